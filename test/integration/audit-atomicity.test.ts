import { afterEach, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../src/audit/event.js';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** A text cjson refuses to decode (a lone UTF-16 surrogate, escaped as JSON.stringify writes it). */
const UNDECODABLE = 'ticket \ud800';

/** Everything a transition of a change on `ipsecServerId` may write. */
async function stateOf(h: Harness, changeId: string, ipsecServerId: string) {
  const { redis, keys } = h.orchestrator;
  return {
    stream: await redis.xrange(keys.audit, '-', '+'),
    change: await redis.hgetall(keys.change(changeId)),
    lane: await redis.lrange(keys.lane(ipsecServerId), 0, -1),
    index: await redis.zrange(keys.changes, '0', '-1'),
    serverIndex: await redis.zrange(keys.serverChanges(ipsecServerId), '0', '-1'),
    lock: await redis.get(keys.lock(ipsecServerId)),
  };
}

describe('a transition script that fails (invariant 5)', () => {
  it('appends no event and writes no state when submit.lua cannot read the change fields', async () => {
    harness = await startHarness({ workers: 0 });
    const { scripts, keys } = harness.orchestrator;
    const { ipsecServerId, regionId } = harness.sim.servers[0]!;
    const id = 'chg-01undecodablefields000';
    const before = await stateOf(harness, id, ipsecServerId);
    const context = { actor: 'alice', changeId: id, ipsecServerId, regionId, attempt: 0 };
    const submitted = scripts.run(
      'submit',
      [
        keys.change(id),
        keys.lane(ipsecServerId),
        keys.changes,
        keys.serverChanges(ipsecServerId),
        keys.idempotency('alice', 'k-1'),
        keys.audit,
      ],
      [
        id,
        Date.now(),
        'body-hash',
        60_000,
        JSON.stringify({ ipsecServerId, regionId, note: UNDECODABLE }),
        'queued',
        '',
        encodeEvent(context, 'submitted', { details: { note: UNDECODABLE } }),
      ],
    );
    await expect(submitted).rejects.toThrow(/unicode escape/);
    expect(await stateOf(harness, id, ipsecServerId)).toEqual(before);
    expect(await harness.orchestrator.redis.exists(keys.idempotency('alice', 'k-1'))).toBe(0);
  });

  it('appends no event and leaves the change as it was when finish.lua cannot read its fields', async () => {
    harness = await startHarness({ workers: 0 });
    const { changes } = harness.orchestrator;
    const change = await submitTo(harness, 0, { IpsecServerName: 'edge-1' });
    const before = await stateOf(harness, change.id, change.ipsecServerId);
    const finished = changes.finish(change, {
      state: 'cancelled',
      allowedFrom: ['queued'],
      fields: { reason: UNDECODABLE },
      events: [
        encodeEvent(
          {
            actor: 'bob',
            changeId: change.id,
            ipsecServerId: change.ipsecServerId,
            regionId: change.regionId,
            attempt: 0,
          },
          'cancelled',
        ),
      ],
    });
    await expect(finished).rejects.toThrow(/unicode escape/);
    expect(await stateOf(harness, change.id, change.ipsecServerId)).toEqual(before);
    expect((await changes.get(change.id)).state).toBe('queued');
  });
});

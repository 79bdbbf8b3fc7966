import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, compareStreamIds } from '../../src/audit/audit-log.js';
import { encodeEvent } from '../../src/audit/event.js';
import { changesWithClock, type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const MINUTE = 60_000;

/**
 * A server's history written straight into its change hashes and index, in the layout the
 * transition scripts write, so that it can span hours of Redis's clock: `score` is the submitter's
 * clock at submission (the index), `at` the Redis time of each event (its stream id), in minutes.
 */
async function seedHistory(
  h: Harness,
  ipsecServerId: string,
  history: { change: string; score: number; at: number[] }[],
  startMs: number,
): Promise<string[]> {
  const { redis, keys } = h.orchestrator;
  const pipeline = redis.pipeline();
  const ids: string[] = [];
  for (const { change, score, at } of history) {
    const context = { actor: 'alice', changeId: change, ipsecServerId, regionId: 'cn-shanghai', attempt: 0 };
    const timeline = at.flatMap((minutes) => {
      const id = `${startMs + minutes * MINUTE}-0`;
      ids.push(id);
      return [`e:${id}`, encodeEvent(context, 'running', {}, startMs + minutes * MINUTE)];
    });
    pipeline.hset(keys.change(change), 'state', 'running', ...timeline);
    pipeline.zadd(keys.serverChanges(ipsecServerId), startMs + score * MINUTE, change);
  }
  await pipeline.exec();
  return ids.sort(compareStreamIds);
}

describe("a server's audit trail", () => {
  it('comes in stream order a page at a time, however long a change lives and whatever its submitter clock', async () => {
    harness = await startHarness({ workers: 0 });
    const startMs = Date.now() - 24 * 60 * MINUTE;
    const expected = await seedHistory(
      harness,
      'iss-seeded',
      [
        // Waited five hours behind a busy gateway: its last event comes after three later changes'.
        { change: 'chg-a', score: 0, at: [0, 1, 300] },
        { change: 'chg-b', score: 10, at: [10, 11, 12] },
        // Its second event lies within the clock margin of the next change's score...
        { change: 'chg-c', score: 200, at: [200, 249.9, 400] },
        // ...whose submitter's clock ran 30 s ahead of Redis's: its first event is before its score.
        { change: 'chg-d', score: 250, at: [249.5, 250] },
        { change: 'chg-e', score: 600, at: [600] },
      ],
      startMs,
    );
    const ids = async (pageSize: number, query = {}) =>
      (
        await new AuditLog(harness!.orchestrator.redis, harness!.orchestrator.keys, { pageSize }).query({
          ipsecServerId: 'iss-seeded',
          ...query,
        })
      ).map((event) => event.id);

    for (const pageSize of [1, 2, 1000]) expect(await ids(pageSize)).toEqual(expected);
    const from = startMs + 11 * MINUTE;
    const to = startMs + 300 * MINUTE;
    const inRange = expected.filter(
      (id) => Number(id.split('-')[0]) >= from && Number(id.split('-')[0]) <= to,
    );
    expect(inRange).toHaveLength(7);
    expect(await ids(1, { from, to })).toEqual(inRange);
    expect(await ids(1, { limit: 4 })).toEqual(expected.slice(0, 4));
  });

  it('merges timelines that interleave, as the global trail has them', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const { redis, keys } = harness.orchestrator;
    const ahead = changesWithClock(harness, 30_000);
    const target = harness.sim.servers[0]!;
    const submitted = [];
    for (let n = 0; n < 6; n++) {
      const params = { LocalSubnet: `172.16.${80 + n}.0/24` };
      submitted.push(
        n % 3 === 2
          ? (
              await ahead.submit({
                ipsecServerId: target.ipsecServerId,
                regionId: target.regionId,
                params,
                actor: 'alice',
              })
            ).change
          : await submitTo(harness, 0, params),
      );
      await submitTo(harness, 1, { LocalSubnet: `172.17.${n}.0/24` });
    }
    for (const change of submitted) await harness.waitFor(change.id, ['succeeded']);

    const global = (await harness.orchestrator.audit.query({}))
      .filter((event) => event.ipsecServerId === target.ipsecServerId)
      .map((event) => event.id);
    expect(global.length).toBeGreaterThanOrEqual(6 * 5);
    const byServer = await new AuditLog(redis, keys, { pageSize: 2 }).query({
      ipsecServerId: target.ipsecServerId,
    });
    expect(byServer.map((event) => event.id)).toEqual(global);
  });
});

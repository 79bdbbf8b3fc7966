import { afterEach, describe, expect, it } from 'vitest';
import { AliyunClient } from '../../src/aliyun/client.js';
import { AliyunApiError } from '../../src/aliyun/errors.js';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import { dryRunUpdateIpsecServer } from '../../src/ipsec/api.js';
import { forwardTo, sendJson, startHttpServer, type TestHttpServer } from '../support/http-server.js';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

/**
 * The cloud may quote a parameter it refuses. A refused Psk must not reach the audit, the change
 * or an error anyone reads in any of the forms it could be quoted in: as sent, percent-encoded as
 * on the wire, JSON-escaped.
 */

// Characters that percent-encoding and JSON escaping both change, so each form differs.
const PSK = 'q"uo\\te(d)*k!y 42';

function forms(secret: string): string[] {
  return [secret, percentEncode(secret), encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
}

const REFUSAL = {
  Code: 'InvalidParameter.Psk',
  Message: `The Psk "${PSK}" is not allowed (sent as ${percentEncode(PSK)}; JSON ${JSON.stringify(PSK)})`,
  Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(PSK)}`,
  RequestId: 'req-psk-refused',
};

let harness: Harness | undefined;
let hop: TestHttpServer | undefined;
afterEach(async () => {
  await harness?.close();
  await hop?.close();
  harness = undefined;
  hop = undefined;
});

/** Forwards every call to the simulator, but refuses the calls that carry PSK. */
async function startRefusingHop(simEndpoint: string): Promise<TestHttpServer> {
  const forward = forwardTo(simEndpoint);
  return startHttpServer((recorded, response, raw) => {
    // Only UpdateIpsecServer carries a Psk (its action is named in a header under V3).
    if (recorded.query.Psk === PSK) sendJson(response, 400, REFUSAL);
    else forward(recorded, response, raw);
  });
}

describe('a cloud refusal that quotes the Psk', () => {
  it('reaches the audit and the change with the Psk omitted, its code and RequestId kept', async () => {
    harness = await startHarness({ workers: 0 });
    const h = harness;
    hop = await startRefusingHop(h.sim.endpoint);
    await h.startWorker({ endpoint: hop.origin });

    const change = await submitTo(h, 0, { Psk: PSK });
    expect(await h.waitFor(change.id, ['rejected', 'failed', 'succeeded'])).toBe('rejected');
    expect(hop.requests.some((request) => request.query.Psk === PSK)).toBe(true);

    const events = await h.orchestrator.audit.forChange(change.id);
    const refused = events.find((event) => event.code === REFUSAL.Code);
    expect(refused?.cloudRequestId).toBe(REFUSAL.RequestId);
    expect(JSON.stringify(refused?.details)).toContain('[omitted]');

    const redis = h.orchestrator.redis;
    const stored = JSON.stringify([
      await redis.xrange(h.orchestrator.keys.audit, '-', '+'),
      await redis.hgetall(h.orchestrator.keys.change(change.id)),
      await h.orchestrator.changes.get(change.id),
    ]);
    for (const form of forms(PSK)) expect(stored).not.toContain(form);
  });

  it('is thrown by the client API without the Psk in its message or recommendation', async () => {
    harness = await startHarness({ workers: 0 });
    const h = harness;
    hop = await startRefusingHop(h.sim.endpoint);
    const client = new AliyunClient({
      endpoint: hop.origin,
      credentials: { accessKeyId: h.sim.accessKeyId, accessKeySecret: h.sim.accessKeySecret },
    });
    try {
      const server = h.sim.servers[0]!;
      const error = await dryRunUpdateIpsecServer(client, {
        RegionId: server.regionId,
        IpsecServerId: server.ipsecServerId,
        Psk: PSK,
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AliyunApiError);
      const refusal = error as AliyunApiError;
      expect(refusal.code).toBe(REFUSAL.Code);
      expect(refusal.requestId).toBe(REFUSAL.RequestId);
      expect(refusal.message).toMatch(/^The Psk "\[omitted\]" is not allowed/);
      const shown = JSON.stringify([refusal.message, refusal.recommend, refusal.toJSON(), String(refusal)]);
      for (const form of forms(PSK)) expect(shown).not.toContain(form);
    } finally {
      await client.close();
    }
  });
});

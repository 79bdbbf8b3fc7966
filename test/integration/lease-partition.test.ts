/**
 * DESIGN invariant 2 under a network partition: a worker cut off from Redis (its commands go out
 * and are never answered) cannot renew its server lease, and Redis gives the server to another
 * worker once the lease runs out. The cut-off worker must have stopped talking to the cloud by
 * then, or both talk to one gateway at once.
 */
import { afterEach, expect, it } from 'vitest';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

let harness: Harness | undefined;
let proxy: TcpProxy | undefined;

afterEach(async () => {
  // The partition heals first, so the cut-off worker's held commands are answered and it closes.
  proxy?.heal();
  await harness?.close();
  await proxy?.close();
  harness = undefined;
  proxy = undefined;
});

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it('a worker cut off from Redis stops its apply before its lease can lapse; the next worker finishes alone', async () => {
  harness = await startHarness({
    workers: 0,
    // The apply is slow to answer: it is still in flight when the lease runs out.
    sim: { servers: 1, faults: { configuringMs: 0, applyLatencyMs: 8_000 } },
    policy: { leaseMs: 1_000, callTimeoutMs: 10_000 },
  });
  const h = harness;
  proxy = await startTcpProxy(h.redisUrl);
  await h.startWorker({ redisUrl: proxy.url });
  const change = await submitTo(h, 0, { IpsecServerName: 'cut-off' });
  // The dry run and then the apply have reached the simulator: the apply is in flight.
  await until(() => (h.sim.stats().byAction.UpdateIpsecServer ?? 0) === 2, 'the apply to be sent');
  proxy.freeze();
  h.sim.setFaults({ applyLatencyMs: 0 });

  await h.startWorker();
  expect(await h.waitFor(change.id, ['succeeded', 'failed', 'rejected'], 20_000)).toBe('succeeded');
  const stats = h.sim.stats();
  expect(stats.concurrentUpdateViolations).toBe(0);
  expect(stats.maxConcurrentUpdatesPerServer).toBe(1);
  expect(stats.applies).toBe(1);
  const history = h.sim.server(change.ipsecServerId)!.history;
  expect(history.map((entry) => entry.clientToken)).toEqual([change.clientToken]);
});

it('a worker cut off from Redis also stops its verify reads once its lease cannot be counted on', async () => {
  harness = await startHarness({
    workers: 0,
    // The listing never shows the apply, so the verify loop would read for a long time.
    sim: { servers: 1, faults: { configuringMs: 0, staleReadMs: 600_000 } },
    policy: { leaseMs: 1_000, verifyAttempts: 1_000, verifyIntervalMs: 50 },
  });
  const h = harness;
  proxy = await startTcpProxy(h.redisUrl);
  await h.startWorker({ redisUrl: proxy.url });
  await submitTo(h, 0, { IpsecServerName: 'cut-off-verify' });
  await until(() => h.sim.stats().applies === 1, 'the apply');
  proxy.freeze();
  const reads = () => h.sim.stats().byAction.ListIpsecServers ?? 0;
  // Three quarters of the lease at most, plus one read in flight.
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const settled = reads();
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(reads()).toBe(settled);
});

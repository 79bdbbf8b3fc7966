/**
 * The set of workers' heartbeats, which /readyz and the worker healthcheck read: a worker that
 * died without leaving (kill -9) is forgotten a day later instead of staying in it for ever.
 */
import { afterEach, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

it("forgets a worker whose last heartbeat is a day old, and keeps the others'", async () => {
  harness = await startHarness({ workers: 0 });
  const { redis, keys } = harness.orchestrator;
  const now = Date.now();
  await redis.zadd(
    keys.workers,
    String(now - 25 * 3_600_000),
    'worker:gone:1',
    String(now - 60_000),
    'worker:recent:2',
  );
  const worker = await harness.startWorker();
  const ids = await redis.zrange(keys.workers, '0', '-1');
  expect(ids.sort()).toEqual([worker.workerId, 'worker:recent:2'].sort());
  expect(await harness.orchestrator.liveWorkers()).toEqual([worker.workerId]);
});

/**
 * A change worker in a process of its own, for `BENCH_WORKERS` > 1: the way workers scale out.
 * It is started with its settings (JSON, secret included) on its IPC channel rather than on its
 * command line, tells the bench its completions over that channel, never through Redis, so the
 * commands counted are the pipeline's alone, and closes when the bench says so.
 */

import { createLogger } from '../../src/log.js';
import { startChangeWorker } from '../../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';

export interface WorkerChildSettings {
  redisUrl: string;
  prefix: string;
  policy: PipelinePolicyInput;
  concurrency: number;
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  maxConnections: number;
}

/** What the child sends: `ready` once, then counts since its last message. */
export type WorkerChildMessage = { ready: true } | { completed: number; failed: number };

async function run(settings: WorkerChildSettings): Promise<void> {
  const worker = await startChangeWorker({
    redisUrl: settings.redisUrl,
    prefix: settings.prefix,
    policy: settings.policy,
    concurrency: settings.concurrency,
    cloud: {
      endpoint: settings.endpoint,
      profiles: { default: { accessKeyId: settings.accessKeyId, accessKeySecret: settings.accessKeySecret } },
      timeoutMs: 10_000,
      maxConnections: settings.maxConnections,
    },
    log: createLogger({ level: 'silent' }),
    repairIntervalMs: 0,
  });
  // Counts go out once per turn of the event loop: one message per batch of completions, not per job.
  let completed = 0;
  let failed = 0;
  let flushing = false;
  const flush = () => {
    flushing = false;
    process.send?.({ completed, failed } satisfies WorkerChildMessage);
    completed = 0;
    failed = 0;
  };
  const count = () => {
    if (flushing) return;
    flushing = true;
    setImmediate(flush);
  };
  worker.worker.on('completed', () => {
    completed++;
    count();
  });
  worker.worker.on('failed', () => {
    failed++;
    count();
  });
  process.on('message', (message) => {
    if (message === 'close') void worker.close().then(() => process.disconnect());
  });
  process.send?.({ ready: true } satisfies WorkerChildMessage);
}

process.once('message', (settings: WorkerChildSettings) => {
  run(settings).catch((error: unknown) => {
    process.stderr.write(`bench worker: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
});

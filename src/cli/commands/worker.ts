import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig } from '../../config.js';
import { parseOrThrow } from '../../validation.js';

const workerOptionsSchema = z.strictObject({
  concurrency: z.coerce
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .optional(),
});

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .summary('run change workers: dry run, apply and verify queued changes')
    .description(
      'Run BullMQ change workers against REDIS_URL until SIGTERM or SIGINT (then finish the steps in\n' +
        'flight and exit 0). Cloud calls use ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (/ _SECURITY_TOKEN)\n' +
        'and IPSEC_FLEET_ENDPOINT when set; Psks are opened with IPSEC_FLEET_SECRET_KEY.',
    )
    .option(
      '--concurrency <n>',
      'changes in flight in this process (default: IPSEC_FLEET_WORKER_CONCURRENCY or 50)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  REDIS_URL=redis://127.0.0.1:6379 ipsec-fleet worker --concurrency 100\n',
    )
    .action(async (rawOptions: Record<string, unknown>) => {
      const options = parseOrThrow(workerOptionsSchema, rawOptions, 'options');
      // Loaded here, not at start-up: BullMQ costs every other verb half a second to import.
      const { runChangeWorker } = await import('../../../workers/change-worker.js');
      await runChangeWorker({ config: loadConfig(), concurrency: options.concurrency });
    });
}

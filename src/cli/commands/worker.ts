import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig } from '../../config.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { byFlag, parseFlags, wholeNumberFlag } from '../flags.js';

const workerFlagsSchema = z.strictObject({
  '--concurrency': wholeNumberFlag()
    .pipe(z.number().min(1, 'must be at least 1').max(1000, 'must be at most 1000'))
    .optional(),
});

const ENVIRONMENT_HELP = `
Environment:
  REDIS_URL                    Redis to take changes from (default redis://127.0.0.1:6379)
  IPSEC_FLEET_PREFIX           key prefix, the same as serve's (default ipf)
  ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN
                               credentials of the default profile
  IPSEC_FLEET_PROFILES_FILE    JSON file of named credential profiles
  IPSEC_FLEET_ENDPOINT         one endpoint for every region (default: the official rule)
  IPSEC_FLEET_SECRET_KEY       opens the Psks that serve sealed
  IPSEC_FLEET_POLICY           JSON object overriding backoff, lease, verify, timeout and
                               rate limit settings, e.g. {"callTimeoutMs":20000}
  IPSEC_FLEET_WORKER_CONCURRENCY, IPSEC_FLEET_HTTP_TIMEOUT_MS, IPSEC_FLEET_HTTP_CONNECTIONS,
  LOG_LEVEL
A bad value stops the worker at once with exit 2, naming the variable and the rule.
`;

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .summary('run change workers: dry run, apply and verify queued changes')
    .description(
      'Run BullMQ change workers against REDIS_URL until SIGTERM or SIGINT (then finish the steps in ' +
        'flight and exit 0; if Redis does not answer for the lease (30 s) or the call timeout plus 5 s, ' +
        'whichever is longer, or on a second signal, exit 1 and leave ' +
        'them to resume on another worker). Cloud calls use the credentials of the profile each change names: ' +
        'ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (/ _SECURITY_TOKEN) for the default one, ' +
        'IPSEC_FLEET_PROFILES_FILE for named ones; Psks are opened with IPSEC_FLEET_SECRET_KEY.',
    )
    .option(
      '--concurrency <n>',
      'changes in flight in this process (default: IPSEC_FLEET_WORKER_CONCURRENCY or 50)',
    )
    .addHelpText(
      'after',
      `${ENVIRONMENT_HELP}\nExample:\n  REDIS_URL=redis://127.0.0.1:6379 ipsec-fleet worker --concurrency 100\n${EXIT_CODES_HELP}`,
    )
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const flags = parseFlags(workerFlagsSchema, byFlag(command));
      // Before the import below, which is slow: bad input is refused at once.
      const config = loadConfig();
      // Loaded here, not at start-up: BullMQ costs every other verb half a second to import.
      const { runChangeWorker } = await import('../../../workers/change-worker.js');
      await runChangeWorker({ config, concurrency: flags['--concurrency'] });
    });
}

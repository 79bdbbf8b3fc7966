import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig } from '../../config.js';
import { DemoSetupError } from '../../demo/redis.js';
import { MIN_SERVERS } from '../../demo/scenario.js';
import { ExitCode } from '../exit-codes.js';
import { byFlag, parseFlags, wholeNumberFlag } from '../flags.js';

// Keyed by flag (byFlag), so that a message names --servers as typed.
const demoFlagsSchema = z.strictObject({
  '--servers': wholeNumberFlag()
    .pipe(z.number().min(MIN_SERVERS, `must be at least ${MIN_SERVERS}`).max(1000, 'must be at most 1000'))
    .optional(),
  '--keep-running': z.boolean().optional(),
  '--short': z.boolean().optional(),
});

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .summary(
      'run the whole system on a simulated fleet: changes, backoff, a financial lock, a race, a rollout',
    )
    .description(
      [
        'Start the simulator, the API (serve) and two workers as child processes, against the Redis at ' +
          'REDIS_URL (default redis://127.0.0.1:6379) or, when nothing answers there, a private ' +
          'redis-server from PATH. Submit a mix of changes over the HTTP API (PSK rotations, subnet ' +
          'changes, IKE upgrades, two changes racing for one server, one illegal LocalSubnet, one ' +
          'server behind a financial lock the demo lifts) and show the progress. Then run a fleet ' +
          'rollout (an IKE upgrade for every server, batches 1, 25%, the rest; maxErrors 0): print its ' +
          'plan, approve it as a second identity (its submitter may not) and draw its progress until ' +
          'it completes. End with a summary of what each change and the rollout should have become ' +
          'and what they became.',
        'Everything lives under a key prefix of its own, deleted at the end; nothing is flushed. ' +
          "The processes' logs go to a temporary file, named at the start.",
        'Exit codes: 0 every change and the rollout ended as expected, 1 otherwise, 2 no Redis (the message says how ' +
          'to get one) or a bad flag, 130 interrupted.',
      ].join('\n\n'),
    )
    .option('--servers <n>', `simulated servers, one change each (${MIN_SERVERS}-1000; default 50)`)
    .option('--keep-running', 'leave everything running after the summary, until Ctrl-C')
    .option('--short', 'a quick run on 12 servers (tests)')
    .addHelpText('after', '\nExample:\n  npm run demo\n  npx ipsec-fleet demo --servers 200 --keep-running\n')
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const flags = parseFlags(demoFlagsSchema, byFlag(command));
      const config = loadConfig();
      // Loaded here, not at start-up, so other verbs do not pay for the demo's imports.
      const { runDemo } = await import('../../demo/run-demo.js');
      try {
        process.exitCode = await runDemo({
          servers: flags['--servers'] ?? (flags['--short'] ? 12 : 50),
          keepRunning: flags['--keep-running'] ?? false,
          short: flags['--short'] ?? false,
          redisUrl: config.REDIS_URL,
        });
      } catch (error) {
        if (!(error instanceof DemoSetupError)) throw error;
        process.stderr.write(`ipsec-fleet demo: ${error.message}\n`);
        process.exitCode = ExitCode.invalidInput;
      }
      // Every handle is closed by now; should a library keep one open, the demo still ends.
      setTimeout(() => process.exit(), 3_000).unref();
    });
}

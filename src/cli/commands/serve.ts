import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { z } from 'zod';
import { buildApp } from '../../api/app.js';
import { TokenStore } from '../../api/auth/tokens.js';
import { envSchema, loadConfig, portSchema } from '../../config.js';
import { createLogger } from '../../log.js';
import { Orchestrator } from '../../orchestrator/orchestrator.js';
import { RedisRefusedError, reachRedis } from '../../orchestrator/redis.js';
import { Rollouts } from '../../rollouts/rollouts.js';
import { InvalidInputError } from '../../validation.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { byFlag, parseFlags } from '../flags.js';
import { listenErrorAsInput } from '../listen-error.js';

const env = envSchema.shape;

/** Flags are checked by the rules of the environment variables they override. */
const serveFlagsSchema = z.strictObject({
  '--host': env.IPSEC_FLEET_HOST.unwrap().optional(),
  '--port': z
    .string()
    .regex(/^\d{1,5}$/, 'must be a port number from 0 to 65535')
    .transform(Number)
    .pipe(portSchema)
    .optional(),
  '--tokens': env.IPSEC_FLEET_TOKENS_FILE.unwrap().optional(),
});

function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .summary('run the HTTP API: submit, inspect and cancel changes')
    .description(
      'Serve the ipsec-fleet HTTP API (docs at /docs, /openapi.json) against REDIS_URL until SIGTERM or ' +
        'SIGINT (then finish the requests in flight and exit 0). Bearer tokens are checked against the ' +
        'hashes in the tokens file (see `ipsec-fleet token create`); SIGHUP re-reads it. When listening it ' +
        'prints one JSON line on stdout, {"url":"http://host:port"}; logs go to stderr.',
    )
    .option('--host <address>', 'address to listen on (default: IPSEC_FLEET_HOST or 127.0.0.1)')
    .option('--port <port>', 'port to listen on, 0 for a free one (default: IPSEC_FLEET_PORT or 8080)')
    .option('--tokens <file>', 'tokens file (default: IPSEC_FLEET_TOKENS_FILE)')
    .addHelpText(
      'after',
      '\nExample:\n' +
        '  ipsec-fleet token create --name alice --roles submitter --file tokens.json\n' +
        '  REDIS_URL=redis://127.0.0.1:6379 ipsec-fleet serve --port 8080 --tokens tokens.json\n' +
        EXIT_CODES_HELP,
    )
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const flags = parseFlags(serveFlagsSchema, byFlag(command));
      const config = loadConfig();
      const tokensFile = flags['--tokens'] ?? config.IPSEC_FLEET_TOKENS_FILE;
      if (!tokensFile) {
        throw new InvalidInputError('options', [
          { field: '--tokens', rule: 'is required (or set IPSEC_FLEET_TOKENS_FILE)' },
        ]);
      }
      const tokens = await TokenStore.load(tokensFile);
      const logger = createLogger({ level: config.LOG_LEVEL, name: 'api' });
      const orchestrator = Orchestrator.connect({
        redisUrl: config.REDIS_URL,
        prefix: config.IPSEC_FLEET_PREFIX,
        secretKey: config.IPSEC_FLEET_SECRET_KEY,
        policy: config.IPSEC_FLEET_POLICY ? JSON.parse(config.IPSEC_FLEET_POLICY) : undefined,
      });
      await reachRedis(orchestrator.redis).catch(async (error: unknown) => {
        if (error instanceof RedisRefusedError) {
          await orchestrator.close().catch(() => undefined);
          throw error;
        }
        // Unreachable is not refused: the API starts, answers 503 meanwhile, and /readyz tells.
        logger.warn({ err: error }, 'Redis does not answer yet');
      });
      const rollouts = Rollouts.for(orchestrator);
      const app = buildApp({ orchestrator, tokens, logger, rollouts });
      const address = {
        host: flags['--host'] ?? config.IPSEC_FLEET_HOST,
        port: flags['--port'] ?? config.IPSEC_FLEET_PORT,
        hostFrom: flags['--host'] === undefined ? 'IPSEC_FLEET_HOST' : '--host',
        portFrom: flags['--port'] === undefined ? 'IPSEC_FLEET_PORT' : '--port',
      };
      try {
        await app.listen({ host: address.host, port: address.port });
      } catch (error) {
        await app.close().catch(() => undefined);
        await rollouts.close().catch(() => undefined);
        await orchestrator.close().catch(() => undefined);
        throw listenErrorAsInput(error, address);
      }
      process.on('SIGHUP', () => {
        tokens.reload().then(
          (count) => logger.info({ tokens: count }, 'tokens file reloaded'),
          (error: unknown) =>
            logger.error({ err: error }, 'tokens file not reloaded; keeping the tokens in use'),
        );
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'stopping: finishing the requests in flight');
        app
          .close()
          .then(() => rollouts.close())
          .then(() => orchestrator.close())
          .then(
            () => {
              logger.info('stopped');
              logger.flush();
              process.exit(0);
            },
            (error: unknown) => {
              logger.error({ err: error }, 'stop failed');
              logger.flush();
              process.exit(1);
            },
          );
      };
      // Before the URL is printed: whoever waits for it may signal at once, and until a listener
      // exists a signal kills the process with requests in flight.
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const url = urlOf(app.server.address() as AddressInfo);
      process.stdout.write(`${JSON.stringify({ url })}\n`);
      logger.info({ url, tokens: tokens.size }, 'api listening');
    });
}

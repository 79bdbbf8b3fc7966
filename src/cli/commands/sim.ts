import { type Command, Option } from 'commander';
import { z } from 'zod';
import { envSchema, loadConfig } from '../../config.js';
import { createLogger } from '../../log.js';
import { type SimulatorOptionsInput, simFaultsSchema, simulatorOptionsSchema } from '../../sim/options.js';
import { startSimulator } from '../../sim/server.js';
import { type FieldIssue, InvalidInputError } from '../../validation.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { byFlag, parseFlags } from '../flags.js';
import { listenErrorAsInput } from '../listen-error.js';

/**
 * Flags arrive as strings; each is checked by the very rule of the simulator's options schema,
 * under the flag's own name, so `--busy-rate 2` fails as "--busy-rate: must be from 0 to 1".
 */
const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)$/;

function numberFlag<T extends z.ZodType>(rule: T) {
  return z
    .string()
    .trim()
    .regex(NUMBER, 'must be a number')
    .transform(Number)
    .pipe(rule as unknown as z.ZodType<z.output<T>, number>)
    .optional();
}

function listFlag(rule: z.ZodType<string[], string[]>) {
  return z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ''),
    )
    .pipe(rule)
    .optional();
}

/**
 * A secret flag of old, still parsed so that it is refused with the variable to use instead:
 * argv is visible to every user of the machine (ps, /proc) and lands in shell history.
 */
function secretFlag(variable: string) {
  return z
    .undefined({
      error: `is not accepted: a secret in argv shows in process lists and shell history; set ${variable}`,
    })
    .optional();
}

const options = simulatorOptionsSchema.shape;
const faults = simFaultsSchema.shape;

const simFlagsSchema = z.strictObject({
  // serve's rule: a malformed address (999.1.1.1) is refused here, not by DNS at listen time.
  '--host': envSchema.shape.IPSEC_FLEET_HOST.unwrap().optional(),
  '--port': numberFlag(options.port.unwrap()),
  '--servers': numberFlag(options.servers.unwrap()),
  '--regions': listFlag(options.regions.unwrap()),
  '--seed': numberFlag(options.seed.unwrap()),
  '--access-key-id': z.string().min(1, 'must not be empty').optional(),
  '--access-key-secret': secretFlag('IPSEC_FLEET_SIM_ACCESS_KEY_SECRET'),
  '--security-token': secretFlag('IPSEC_FLEET_SIM_SECURITY_TOKEN'),
  '--fleet': z.string().min(1, 'must not be empty').optional(),
  '--configuring-ms': numberFlag(faults.configuringMs.unwrap()),
  '--busy-rate': numberFlag(faults.busyRate.unwrap()),
  '--financial-locked': listFlag(faults.financialLocked.unwrap()),
  '--qps': numberFlag(faults.qps.unwrap()),
  '--fail-rate': numberFlag(faults.failRate.unwrap()),
  '--reset-rate': numberFlag(faults.resetRate.unwrap()),
  '--garble-rate': numberFlag(faults.garbleRate.unwrap()),
  '--latency-ms': numberFlag(faults.latencyMs.unwrap()),
  '--jitter-ms': numberFlag(faults.jitterMs.unwrap()),
  '--stale-read-ms': numberFlag(faults.staleReadMs.unwrap()),
});

type SimFlags = z.output<typeof simFlagsSchema>;

/** The simulator's own key, when one is given: the id by flag or variable, the rest by variable. */
export interface SimKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/**
 * The key from --access-key-id and the IPSEC_FLEET_SIM_* variables, or undefined for the built-in
 * test key. Half a key is refused, naming what is missing.
 */
function simKeyOf(flags: SimFlags, env: NodeJS.ProcessEnv): SimKey | undefined {
  const config = loadConfig({
    IPSEC_FLEET_SIM_ACCESS_KEY_ID: env.IPSEC_FLEET_SIM_ACCESS_KEY_ID,
    IPSEC_FLEET_SIM_ACCESS_KEY_SECRET: env.IPSEC_FLEET_SIM_ACCESS_KEY_SECRET,
    IPSEC_FLEET_SIM_SECURITY_TOKEN: env.IPSEC_FLEET_SIM_SECURITY_TOKEN,
  });
  const id = flags['--access-key-id'] ?? config.IPSEC_FLEET_SIM_ACCESS_KEY_ID;
  const idFrom = flags['--access-key-id'] === undefined ? 'IPSEC_FLEET_SIM_ACCESS_KEY_ID' : '--access-key-id';
  const secret = config.IPSEC_FLEET_SIM_ACCESS_KEY_SECRET;
  const token = config.IPSEC_FLEET_SIM_SECURITY_TOKEN;
  const issues: FieldIssue[] = [];
  if (id !== undefined && secret === undefined) {
    issues.push({ field: 'IPSEC_FLEET_SIM_ACCESS_KEY_SECRET', rule: `is required with ${idFrom}` });
  }
  if (secret !== undefined && id === undefined) {
    issues.push({
      field: '--access-key-id',
      rule: 'is required with IPSEC_FLEET_SIM_ACCESS_KEY_SECRET (or set IPSEC_FLEET_SIM_ACCESS_KEY_ID)',
    });
  }
  if (token !== undefined && (id === undefined || secret === undefined) && issues.length === 0) {
    issues.push({
      field: 'IPSEC_FLEET_SIM_SECURITY_TOKEN',
      rule: 'needs an access key id and IPSEC_FLEET_SIM_ACCESS_KEY_SECRET',
    });
  }
  if (issues.length > 0) throw new InvalidInputError('options', issues);
  if (id === undefined || secret === undefined) return undefined;
  return token === undefined
    ? { accessKeyId: id, accessKeySecret: secret }
    : { accessKeyId: id, accessKeySecret: secret, securityToken: token };
}

export function toSimulatorOptions(flags: SimFlags, key?: SimKey): SimulatorOptionsInput {
  const fault: NonNullable<SimulatorOptionsInput['faults']> = {};
  const set = <K extends keyof typeof fault>(name: K, value: (typeof fault)[K] | undefined) => {
    if (value !== undefined) fault[name] = value;
  };
  set('configuringMs', flags['--configuring-ms']);
  set('busyRate', flags['--busy-rate']);
  set('financialLocked', flags['--financial-locked']);
  set('qps', flags['--qps']);
  set('failRate', flags['--fail-rate']);
  set('resetRate', flags['--reset-rate']);
  set('garbleRate', flags['--garble-rate']);
  set('latencyMs', flags['--latency-ms']);
  set('jitterMs', flags['--jitter-ms']);
  set('staleReadMs', flags['--stale-read-ms']);
  const result: SimulatorOptionsInput = { faults: fault };
  if (flags['--host'] !== undefined) result.host = flags['--host'];
  if (flags['--port'] !== undefined) result.port = flags['--port'];
  if (flags['--servers'] !== undefined) result.servers = flags['--servers'];
  if (flags['--regions'] !== undefined) result.regions = flags['--regions'];
  if (flags['--seed'] !== undefined) result.seed = flags['--seed'];
  if (flags['--fleet'] !== undefined) result.fleetFile = flags['--fleet'];
  if (key !== undefined) result.accessKeys = [key];
  return result;
}

/**
 * Flags as byFlag() reads them, and the IPSEC_FLEET_SIM_* variables → simulator options; throws
 * InvalidInputError naming a bad flag or variable.
 */
export function simOptionsFromFlags(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): SimulatorOptionsInput {
  const parsed = parseFlags(simFlagsSchema, flags);
  return toSimulatorOptions(parsed, simKeyOf(parsed, env));
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .summary('run a local Alibaba Cloud VPC endpoint for the IPsec server API (tests, demos, benchmarks)')
    .description(
      [
        'Run a simulated Alibaba Cloud VPC endpoint serving UpdateIpsecServer, ListIpsecServers and ' +
          'DescribeRegions over an in-memory fleet, signed with V3 (ACS3-HMAC-SHA256) or V1 (HMAC-SHA1) ' +
          'and checked exactly as the real endpoint checks them. It misbehaves on demand, reproducibly ' +
          'from --seed: busy and locked gateways, throttling, 5xx answers, connection resets, latency.',
        'When it listens it prints one JSON line on stdout, ' +
          '{"endpoint","accessKeyId","accessKeySecret","servers":[...]}, accessKeySecret only for the ' +
          'built-in test key; logs go to stderr. SIGTERM or SIGINT stop it (saving --fleet).',
        'Its own key instead of the built-in one: IPSEC_FLEET_SIM_ACCESS_KEY_ID (or --access-key-id) and ' +
          'IPSEC_FLEET_SIM_ACCESS_KEY_SECRET, plus IPSEC_FLEET_SIM_SECURITY_TOKEN to act as an STS key whose ' +
          'calls must carry that token. The secret and the token are never flags: process lists and shell ' +
          'history would show them.',
        'Control routes, unsigned, loopback clients only: GET /_sim/stats, GET /_sim/servers, ' +
          'GET /_sim/servers/ID, GET and POST /_sim/faults, POST /_sim/reset.',
      ].join('\n\n'),
    )
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on; 0 picks a free one', '0')
    .option('--servers <count>', 'servers to generate when no --fleet file exists', '20')
    .option(
      '--regions <ids>',
      'comma-separated regions the servers are spread over',
      'cn-shanghai,cn-hangzhou',
    )
    .option('--seed <n>', 'seed of server ids, keys and every fault decision', '1')
    .option(
      '--access-key-id <id>',
      'the AccessKeyId that owns the servers (env IPSEC_FLEET_SIM_ACCESS_KEY_ID; default: a built-in test key)',
    )
    // Still parsed, so that a leftover secret flag is refused with the variable to use instead.
    .addOption(new Option('--access-key-secret <secret>').hideHelp())
    .addOption(new Option('--security-token <token>').hideHelp())
    .option('--fleet <file>', 'JSON fleet to load if it exists, saved back on exit')
    .option(
      '--configuring-ms <ms>',
      'how long a gateway answers VpnGateway.Configuring after an apply',
      '1500',
    )
    .option('--busy-rate <rate>', 'share (0-1) of other updates answered VpnGateway.Configuring', '0')
    .option(
      '--financial-locked <list>',
      'server ids and account:<AccessKeyId> answered VpnGateway.FinancialLocked',
    )
    .option('--qps <n>', 'calls per second per access key and action (0: unlimited)', '0')
    .option(
      '--fail-rate <rate>',
      'share (0-1) of calls answered 500 InternalError or 503 ServiceUnavailable',
      '0',
    )
    .option(
      '--reset-rate <rate>',
      'share (0-1) of calls whose connection is reset (half of applies after applying)',
      '0',
    )
    .option(
      '--garble-rate <rate>',
      "share (0-1) of calls processed, then answered 200 with an HTML page (a proxy's) instead",
      '0',
    )
    .option('--latency-ms <ms>', 'delay before every answer', '0')
    .option('--jitter-ms <ms>', 'extra random delay, 0 to this many ms', '0')
    .option(
      '--stale-read-ms <ms>',
      "how long after an apply ListIpsecServers still answers the server's previous record",
      '0',
    )
    .addHelpText(
      'after',
      '\nExample:\n' +
        '  ipsec-fleet sim --port 8080 --servers 100 --busy-rate 0.1 --fail-rate 0.02 --seed 7 &\n' +
        '  ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI5tSimulatorKey01 ALIBABA_CLOUD_ACCESS_KEY_SECRET=sim-secret-do-not-use \\\n' +
        '    ipsec-fleet api UpdateIpsecServer --endpoint http://127.0.0.1:8080 --RegionId cn-shanghai \\\n' +
        '    --IpsecServerId <an ipsecServerId from the banner> --LocalSubnet 192.168.1.0/24 --DryRun true\n' +
        EXIT_CODES_HELP,
    )
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const options = simOptionsFromFlags(byFlag(command));
      const logger = createLogger({ name: 'sim' });
      const simulator = await startSimulator(options, { logger }).catch((error: unknown) => {
        throw listenErrorAsInput(error, {
          host: options.host ?? '127.0.0.1',
          port: options.port ?? 0,
          hostFrom: '--host',
          portFrom: '--port',
        });
      });
      // Listening before the start line goes out: a caller may signal as soon as it reads it.
      const stopped = waitForSignal();
      process.stdout.write(
        `${JSON.stringify({
          endpoint: simulator.endpoint,
          accessKeyId: simulator.accessKeyId,
          // The built-in test key is public; a key of the caller's own it already has, and stdout
          // goes to logs.
          ...(options.accessKeys === undefined ? { accessKeySecret: simulator.accessKeySecret } : {}),
          servers: simulator.servers,
        })}\n`,
      );
      logger.info({ endpoint: simulator.endpoint, servers: simulator.servers.length }, 'simulator listening');
      const signal = await stopped;
      logger.info({ signal }, 'simulator stopping');
      await simulator.close();
    });
}

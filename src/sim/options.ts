import { z } from 'zod';
import { millisecondsSchema } from '../orchestrator/policy.js';

const rate = z.number().min(0, 'must be from 0 to 1').max(1, 'must be from 0 to 1');
// Capped as every millisecond setting is: Node turns a longer timer into 1 ms, so a latency of
// 3,000,000,000 ms would have answered at once.
const millis = millisecondsSchema(
  z.number().int('must be a whole number of milliseconds').min(0, 'must not be negative'),
);

export const simAccessKeySchema = z.strictObject({
  accessKeyId: z.string().min(1),
  accessKeySecret: z.string().min(1),
  /**
   * When set, the key is an STS one: every request signed with it must carry this token (and no
   * other), or it is refused as the cloud refuses it (MissingSecurityToken).
   */
  securityToken: z.string().min(1).optional(),
});

/**
 * Fault settings: what `POST /_sim/faults` may change at run time (all optional there) and what
 * the command line sets at start.
 */
export const simFaultsSchema = z.strictObject({
  /** Share of UpdateIpsecServer calls answered `VpnGateway.Configuring` though no apply is running. */
  busyRate: rate.default(0),
  /** Share of calls answered 500 InternalError or 503 ServiceUnavailable (half each). */
  failRate: rate.default(0),
  /** Share of calls whose connection is destroyed; for half of the applies among them, after applying. */
  resetRate: rate.default(0),
  /**
   * Share of calls processed as usual whose answer is then replaced by a 200 page that is not JSON,
   * as a proxy or captive portal in the path would send: the caller cannot tell what happened.
   */
  garbleRate: rate.default(0),
  latencyMs: millis.default(0),
  jitterMs: millis.default(0),
  /** How long a gateway answers `VpnGateway.Configuring` after a successful apply. */
  configuringMs: millis.default(1500),
  /**
   * How long after a successful apply ListIpsecServers keeps answering the server's record from
   * before it, as a read of an eventually consistent store would. The apply itself, the checks of
   * later calls and the admin views see the new record at once.
   */
  staleReadMs: millis.default(0),
  /**
   * What an apply does to the IkeConfig/IpsecConfig keys it leaves out: `keep` them, or put them
   * back to the defaults the reference documents (`defaults`). The reference does not say which
   * the cloud does; ipsec-fleet must be right under both.
   */
  partialConfigs: z.enum(['keep', 'defaults']).default('keep'),
  /**
   * How long after an apply its ClientToken's retries answer `LastTokenProcessing` (as VPC does
   * while the first request with a token is still being processed) instead of the replay.
   */
  tokenProcessingMs: millis.default(0),
  /** More latency for UpdateIpsecServer calls that are not dry runs: an apply slow to answer. */
  applyLatencyMs: millis.default(0),
  /** Calls per second per access key and action (token bucket); 0 means unlimited. */
  qps: z.number().min(0, 'must not be negative').default(0),
  /** Server ids and `account:<AccessKeyId>` entries answered `VpnGateway.FinancialLocked`. */
  financialLocked: z.array(z.string().min(1)).default([]),
});

export const simulatorOptionsSchema = z.strictObject({
  host: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  port: z
    .number()
    .int('must be a port number from 0 to 65535')
    .min(0, 'must be a port number from 0 to 65535')
    .max(65535, 'must be a port number from 0 to 65535')
    .default(0),
  /** Servers generated when no fleet file is given, spread round-robin over regions and keys. */
  servers: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be from 0 to 100000')
    .max(100_000, 'must be from 0 to 100000')
    .default(20),
  regions: z
    .array(z.string().regex(/^[a-z]{2,}(-[a-z0-9]+)+$/, 'must be region ids such as cn-shanghai'))
    .min(1, 'must name at least one region')
    .default(['cn-shanghai', 'cn-hangzhou']),
  /** Seeds the one PRNG behind ids and every fault decision, so a run can be replayed. */
  seed: z.number().int('must be a whole number').default(1),
  /** The first key is the primary one, printed on start; servers are owned round-robin by all keys. */
  accessKeys: z
    .array(simAccessKeySchema)
    .min(1)
    .default([{ accessKeyId: 'LTAI5tSimulatorKey01', accessKeySecret: 'sim-secret-do-not-use' }]),
  /** JSON fleet to load (and save back on close); generated servers are used when absent. */
  fleetFile: z.string().min(1).optional(),
  faults: simFaultsSchema.default(simFaultsSchema.parse({})),
});

export type SimulatorOptionsInput = z.input<typeof simulatorOptionsSchema>;
export type SimulatorOptions = z.output<typeof simulatorOptionsSchema>;
export type SimFaults = z.output<typeof simFaultsSchema>;
export type SimFaultsPatch = Partial<z.input<typeof simFaultsSchema>>;

import { isIP } from 'node:net';
import { z } from 'zod';
import { IpsecFleetError } from './errors.js';
import { millisecondsSchema, pipelinePolicySchema } from './orchestrator/policy.js';
import {
  describeIssues,
  type FieldIssue,
  fieldIssues,
  issueRule,
  parseInWords,
  statedIssues,
} from './validation.js';

/**
 * A number from the environment, digits only: z.coerce.number would read " " as 0 (a port of 0
 * listens anywhere) and "1e3" as 1000.
 */
const envNumber = () => z.string().regex(/^\d+$/, 'must be a whole number (digits only)').transform(Number);
const positive = z.number().positive('must be positive');
/** `serve`'s port, from IPSEC_FLEET_PORT or --port: 0 picks a free one. */
export const portSchema = z.number().max(65_535, 'must be a port number from 0 to 65535');
const positiveMillis = (fallback: number) => envNumber().pipe(millisecondsSchema(positive)).default(fallback);

/** RFC 1123 labels; a last label of digits only would be a malformed IPv4 address (999.1.1.1). */
const HOST_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function isHost(value: string): boolean {
  if (isIP(value) !== 0) return true;
  const labels = value.split('.');
  return HOST_NAME.test(value) && !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/**
 * Every environment variable ipsec-fleet reads, in one schema. Process entry points call
 * `loadConfig(process.env)` once and pass the typed result down; nothing else reads process.env.
 */
export const envSchema = z.object({
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    // ioredis sends the path as the db number to SELECT; anything else fails only at the first
    // command, as a raw "ERR value is not an integer".
    .refine(
      // Not a URL at all is the check above's to report.
      (url) => !URL.canParse(url) || /^(\/\d*)?$/.test(new URL(url).pathname),
      'its path must be empty or /<db number>, e.g. redis://127.0.0.1:6379/0',
    )
    .default('redis://127.0.0.1:6379'),
  IPSEC_FLEET_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, "-" or "_"')
    .default('ipf'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ALIBABA_CLOUD_ACCESS_KEY_ID: z.string().min(1).optional(),
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: z.string().min(1).optional(),
  ALIBABA_CLOUD_SECURITY_TOKEN: z.string().min(1).optional(),
  IPSEC_FLEET_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .optional(),
  IPSEC_FLEET_HTTP_TIMEOUT_MS: positiveMillis(10_000),
  // Per profile and endpoint, each one a socket and a file descriptor held open: past a thousand
  // it is a typo, or a quota the cloud's throttling would answer long before.
  IPSEC_FLEET_HTTP_CONNECTIONS: envNumber().pipe(positive.max(1024, 'must be at most 1024')).default(16),
  /** Seals Psks at rest (AES-256-GCM); required only to accept changes that carry a Psk. */
  IPSEC_FLEET_SECRET_KEY: z
    .string()
    .refine(isAes256Key, 'must be 32 bytes, as 64 hex characters or base64 (openssl rand -hex 32)')
    .optional(),
  /**
   * Backoff and verification policy overrides, a JSON object (see src/orchestrator/policy.ts).
   * Checked here in full, so a bad one stops a process before it opens any connection.
   */
  IPSEC_FLEET_POLICY: z.string().superRefine(checkPolicy).optional(),
  // The same ceiling as `worker --concurrency`.
  IPSEC_FLEET_WORKER_CONCURRENCY: envNumber().pipe(positive.max(1000, 'must be at most 1000')).default(50),
  /**
   * Named credential profiles, a JSON file `{ "profiles": { "<name>": { "accessKeyId",
   * "accessKeySecret", "securityToken"? } } }` (see src/orchestrator/profiles.ts).
   */
  IPSEC_FLEET_PROFILES_FILE: z.string().min(1).optional(),
  /**
   * `sim`: the access key owning the simulated servers, instead of the built-in test key. The
   * secret and the STS token come only from here: as flags, ps and shell history would show them.
   */
  IPSEC_FLEET_SIM_ACCESS_KEY_ID: z.string().min(1).optional(),
  IPSEC_FLEET_SIM_ACCESS_KEY_SECRET: z.string().min(1).optional(),
  IPSEC_FLEET_SIM_SECURITY_TOKEN: z.string().min(1).optional(),
  /** `serve`: where the HTTP API listens, and the bearer tokens it accepts (hashes only). */
  IPSEC_FLEET_HOST: z
    .string()
    .refine(isHost, 'must be an IP address or a host name, e.g. 127.0.0.1, :: or localhost')
    .default('127.0.0.1'),
  IPSEC_FLEET_PORT: envNumber().pipe(portSchema).default(8080),
  IPSEC_FLEET_TOKENS_FILE: z.string().min(1).optional(),
  /** The CLI's API endpoint and token (flags override these; these override the config file). */
  IPSEC_FLEET_API: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  IPSEC_FLEET_TOKEN: z.string().min(1).optional(),
  IPSEC_FLEET_CONFIG: z.string().min(1).optional(),
});

/**
 * 32 bytes as hex, or as base64 (either alphabet, the padding optional). By shape, not by decoding:
 * Buffer.from(_, 'base64') skips characters outside the alphabet, so `AAAA…A!` or a key with a
 * stray character counted as 32 bytes.
 */
function isAes256Key(value: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(value) || /^[A-Za-z0-9+/_-]{43}=?$/.test(value);
}

function checkPolicy(value: string, ctx: z.RefinementCtx): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be a JSON object, e.g. {"busy":{"baseMs":2000,"maxMs":60000}}',
    });
    return;
  }
  const result = parseInWords(pipelinePolicySchema, parsed);
  for (const issue of result.success ? [] : statedIssues(result.error)) {
    // Re-raised as custom issues so each keeps its path inside the policy (busy.baseMs) and
    // fieldIssues prefixes the variable's name; unknown keys are named one by one, as elsewhere.
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        ctx.addIssue({ code: 'custom', path: [...issue.path, key], message: 'unknown field' });
      }
    } else {
      ctx.addIssue({ code: 'custom', path: issue.path, message: issueRule(issue) });
    }
  }
}

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends IpsecFleetError {
  readonly issues: FieldIssue[];

  constructor(issues: FieldIssue[]) {
    super('CONFIG_INVALID', `invalid environment: ${describeIssues(issues)}`);
    this.issues = issues;
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "unset": shells and compose files often export NAME= to clear one.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = parseInWords(envSchema, present);
  if (!result.success) throw new ConfigError(fieldIssues(result.error));
  return result.data;
}

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../config.js';
import { IpsecFleetError } from '../errors.js';
import { parseOrThrow } from '../validation.js';
import { DEFAULT_API_TIMEOUT_MS, DEFAULT_API_URL } from './api-client.js';

/**
 * Where the CLI's API verbs find the API and their token: flags override the environment
 * (IPSEC_FLEET_API, IPSEC_FLEET_TOKEN), which overrides the config file (IPSEC_FLEET_CONFIG, or
 * ~/.config/ipsec-fleet/config.json when that exists): `{ "api": "...", "token": "..." }`.
 */

const apiUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
// A bearer token goes into a header: printable ASCII without spaces. Its exact format is the
// server's to judge (a wrong token is a 401, not invalid input).
const token = z
  .string()
  .min(1, 'must not be empty')
  .max(1024, 'must be at most 1024 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export const cliConfigFileSchema = z.strictObject(
  { api: apiUrl.optional(), token: token.optional() },
  { error: 'must be a JSON object such as {"api": "https://...", "token": "ipf_..."}' },
);
export type CliConfigFile = z.infer<typeof cliConfigFileSchema>;

/** The flags every API verb takes, keyed by flag so that errors name the flag. */
export const connectionFlagsSchema = z.object({
  '--api': apiUrl.optional(),
  '--token': token.optional(),
  '--json': z.boolean().default(false),
  '--timeout': z
    .string()
    .regex(/^\d+$/, 'must be a whole number of milliseconds')
    .transform(Number)
    .pipe(z.number().int().min(1, 'must be at least 1').max(3_600_000, 'must be at most 3600000'))
    .optional(),
});
export type ConnectionFlags = z.input<typeof connectionFlagsSchema>;

export interface Connection {
  api: string;
  token: string | undefined;
  timeoutMs: number;
  json: boolean;
  /** Where api and token came from, for messages: 'flag', 'env', a file path, or 'default'. */
  sources: { api: string; token: string | undefined };
}

export class CliConfigFileError extends IpsecFleetError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('CONFIG_FILE_INVALID', `config file ${path}: ${message}`);
  }
}

export function defaultConfigPath(): string {
  return join(homedir(), '.config', 'ipsec-fleet', 'config.json');
}

/**
 * Reads the config file: the named one must exist; the default one may be absent. A file that
 * holds a token while others can read it earns a warning on stderr, as ssh gives for keys.
 */
export function readConfigFile(
  path: string,
  required: boolean,
  warn: (message: string) => void = (message) => process.stderr.write(`ipsec-fleet: warning: ${message}\n`),
): CliConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return {};
    throw new CliConfigFileError(
      path,
      code === 'ENOENT' ? 'does not exist (named by IPSEC_FLEET_CONFIG)' : (error as Error).message,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the error: the token, as often as not.
    throw new CliConfigFileError(path, 'is not valid JSON');
  }
  const config = parseOrThrow(cliConfigFileSchema, parsed, `config file ${path}`);
  if (config.token !== undefined && process.platform !== 'win32') {
    const mode = statSync(path).mode;
    if ((mode & 0o077) !== 0) {
      warn(`config file ${path} holds a token and others can read it: chmod 600 ${path}`);
    }
  }
  return config;
}

/** Flags > environment > config file > defaults. Everything is validated, every source by name. */
export function resolveConnection(
  rawFlags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const flags = parseOrThrow(
    connectionFlagsSchema,
    {
      '--api': rawFlags.api,
      '--token': rawFlags.token,
      '--json': rawFlags.json === true,
      '--timeout': rawFlags.timeout,
    },
    'options',
  );
  // Only the variables the API verbs read: a bad REDIS_URL is no business of `ipsec-fleet get`.
  const config = loadConfig({
    IPSEC_FLEET_API: env.IPSEC_FLEET_API,
    IPSEC_FLEET_TOKEN: env.IPSEC_FLEET_TOKEN,
    IPSEC_FLEET_CONFIG: env.IPSEC_FLEET_CONFIG,
  });
  // The token goes into a header, so the variable meets the same rule as the flag.
  parseOrThrow(
    z.object({ IPSEC_FLEET_TOKEN: token.optional() }),
    { IPSEC_FLEET_TOKEN: config.IPSEC_FLEET_TOKEN },
    'environment',
  );
  const filePath = config.IPSEC_FLEET_CONFIG ?? defaultConfigPath();
  const file = readConfigFile(filePath, config.IPSEC_FLEET_CONFIG !== undefined);

  const pick = <T>(flag: T | undefined, fromEnv: T | undefined, fromFile: T | undefined) =>
    flag !== undefined
      ? { value: flag, source: 'flag' }
      : fromEnv !== undefined
        ? { value: fromEnv, source: 'env' }
        : fromFile !== undefined
          ? { value: fromFile, source: filePath }
          : undefined;
  const api = pick(flags['--api'], config.IPSEC_FLEET_API, file.api);
  const tokenChoice = pick(flags['--token'], config.IPSEC_FLEET_TOKEN, file.token);
  return {
    api: api?.value ?? DEFAULT_API_URL,
    token: tokenChoice?.value,
    timeoutMs: flags['--timeout'] ?? DEFAULT_API_TIMEOUT_MS,
    json: flags['--json'],
    sources: { api: api?.source ?? 'default', token: tokenChoice?.source },
  };
}

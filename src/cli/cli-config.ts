import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../config.js';
import { IpsecFleetError } from '../errors.js';
import { parseOrThrow } from '../validation.js';
import { DEFAULT_API_TIMEOUT_MS, DEFAULT_API_URL } from './api-client.js';
import { readSecretInput } from './secret-input.js';

/**
 * Where the CLI's API verbs find the API and their token: flags (--api, --token-file) override
 * the environment (IPSEC_FLEET_API, IPSEC_FLEET_TOKEN), which overrides the config file
 * (IPSEC_FLEET_CONFIG, or ~/.config/ipsec-fleet/config.json when that exists):
 * `{ "api": "...", "token": "..." }`. The token is never a flag's value: argv is visible to every
 * user of the machine (ps, /proc) and lands in shell history.
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
  '--token': z
    .undefined({
      error:
        'is not accepted: a token in argv is visible in process lists and shell history; use ' +
        '--token-file FILE, --token-file - (stdin), IPSEC_FLEET_TOKEN or the config file',
    })
    .optional(),
  '--token-file': z.string().min(1, 'must name a file, or - for stdin').optional(),
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
  /** Where api and token came from, for messages: 'flag', 'env', the config file's path, or 'default'. */
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
  if (config.token !== undefined && readableByOthers(path)) {
    warn(`config file ${path} holds a token and others can read it: chmod 600 ${path}`);
  }
  return config;
}

function readableByOthers(path: string): boolean {
  return process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0;
}

/**
 * The token in `--token-file` (a file, or `-` for stdin), checked by the header's rule. Like the
 * config file, a token file others can read earns a warning.
 */
async function readTokenFile(path: string): Promise<string> {
  const value = await readSecretInput('--token-file', path, 'the API token');
  const checked = parseOrThrow(z.object({ '--token-file': token }), { '--token-file': value }, 'options');
  if (path !== '-' && readableByOthers(path)) {
    process.stderr.write(
      `ipsec-fleet: warning: token file ${path} can be read by others: chmod 600 ${path}\n`,
    );
  }
  return checked['--token-file'];
}

/** Flags > environment > config file > defaults. Everything is validated, every source by name. */
export async function resolveConnection(
  rawFlags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const flags = parseOrThrow(
    connectionFlagsSchema,
    {
      '--api': rawFlags.api,
      '--token': rawFlags.token,
      '--token-file': rawFlags.tokenFile,
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
  const fromTokenFile =
    flags['--token-file'] === undefined ? undefined : await readTokenFile(flags['--token-file']);
  const tokenChoice = pick(fromTokenFile, config.IPSEC_FLEET_TOKEN, file.token);
  return {
    api: api?.value ?? DEFAULT_API_URL,
    token: tokenChoice?.value,
    timeoutMs: flags['--timeout'] ?? DEFAULT_API_TIMEOUT_MS,
    json: flags['--json'],
    sources: { api: api?.source ?? 'default', token: tokenChoice?.source },
  };
}

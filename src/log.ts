import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * The single place where secrets are kept out of logs (DESIGN invariant 6). Paths cover the
 * shapes the code logs: cloud parameters (`Psk`), credentials, HTTP headers, API tokens and the
 * environment variables that carry secrets, at the top level and nested up to five levels (a
 * rollout spec's `targets[i].params.Psk` sits four deep under the object that holds the spec), and
 * the arguments of a Redis command carried by an error.
 */
const SECRET_KEYS = [
  'Psk',
  'psk',
  'AccessKeySecret',
  'accessKeySecret',
  'SecurityToken',
  'securityToken',
  'authorization',
  'Authorization',
  'x-acs-security-token',
  'token',
  'apiToken',
  'secretKey',
  'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  'ALIBABA_CLOUD_SECURITY_TOKEN',
  'IPSEC_FLEET_SECRET_KEY',
  'IPSEC_FLEET_TOKEN',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of SECRET_KEYS) {
    const segment = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `["${key}"]`;
    for (const prefix of ['', '*', '*.*', '*.*.*', '*.*.*.*', '*.*.*.*.*']) {
      paths.push(prefix === '' && segment.startsWith('.') ? key : `${prefix}${segment}`);
    }
  }
  // ioredis puts the failed command on its errors: a refused handshake's args hold the AUTH password.
  for (const prefix of ['', '*.', '*.*.', '*.*.*.']) paths.push(`${prefix}command.args`);
  return paths;
}

export const REDACTED = '[redacted]';

export function createLogger(
  options: { level?: string; name?: string } = {},
  destination?: DestinationStream,
): Logger {
  const config: LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths(), censor: REDACTED },
    base: options.name ? { name: options.name } : { pid: process.pid },
  };
  // Logs go to stderr so stdout stays machine-readable for CLI output and the simulator's banner.
  return pino(config, destination ?? pino.destination(2));
}

export type { Logger };

import { AliyunApiError, AliyunTransportError, CredentialsError } from '../aliyun/errors.js';
import { ConfigError } from '../config.js';
import { IpsecFleetError } from '../errors.js';
import { InvalidInputError } from '../validation.js';
import { ApiError, ApiResponseError, ApiUnreachableError } from './api-client.js';
import { CliConfigFileError } from './cli-config.js';
import { ExitCode } from './exit-codes.js';

/**
 * Invalid input raised by modules this one does not import, known by their stable codes: importing
 * ProfilesError (orchestrator/profiles.ts) or RedisRefusedError (orchestrator/redis.ts) would load
 * the orchestrator into every CLI verb. A refusal by Redis is REDIS_URL's fault: its credentials.
 * A fleet file (`sim --fleet`) that cannot be read or is not JSON is as much the flag's fault as
 * one that breaks the schema, which is an InvalidInputError already.
 */
const INVALID_INPUT_CODES: ReadonlySet<string> = new Set([
  'PROFILES_INVALID',
  'REDIS_REFUSED',
  'SIM_FLEET_FILE',
]);

/** The exit code of an error that reached the top of a command. */
export function exitCodeFor(error: unknown): number {
  if (
    error instanceof InvalidInputError ||
    error instanceof ConfigError ||
    error instanceof CliConfigFileError ||
    error instanceof CredentialsError ||
    (error instanceof IpsecFleetError && INVALID_INPUT_CODES.has(error.code))
  ) {
    return ExitCode.invalidInput;
  }
  if (error instanceof AliyunApiError) return ExitCode.cloudApiError;
  if (error instanceof AliyunTransportError) return ExitCode.transportError;
  if (error instanceof ApiError) return ExitCode.apiError;
  if (error instanceof ApiUnreachableError) return ExitCode.apiUnreachable;
  if (error instanceof ApiResponseError) return ExitCode.unexpected;
  return ExitCode.unexpected;
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    // The problem as the API worded it, then every bad field on its own line.
    const fields = error.errors.map((issue) => `\n  ${issue.field ? `${issue.field}: ` : ''}${issue.rule}`);
    const title = error.problem.title ? ` ${error.problem.title}` : '';
    const detail = error.problem.detail ? `: ${error.problem.detail}` : '';
    return `${error.code} (HTTP ${error.status}${title})${detail}${fields.join('')}`;
  }
  if (error instanceof IpsecFleetError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The error as one problem-like JSON object, for `--json` callers reading stderr: the API's own
 * problem when it sent one, else `{ code, detail, errors? }` in the same shape.
 */
export function errorAsProblem(error: unknown): Record<string, unknown> {
  if (error instanceof ApiError) return { ...error.problem };
  if (error instanceof InvalidInputError || error instanceof ConfigError) {
    return { code: error.code, detail: error.message, errors: error.issues };
  }
  if (error instanceof IpsecFleetError) return { code: error.code, detail: error.message };
  return { code: 'UNEXPECTED', detail: error instanceof Error ? error.message : String(error) };
}

/**
 * Ends a command on `error`: its exit code, and one line on stderr, a problem JSON object when the
 * caller asked for JSON. Every error a user can cause goes through here, so that `--json` callers
 * can parse each one of them.
 */
export function reportError(error: unknown, json: boolean): void {
  process.exitCode = exitCodeFor(error);
  process.stderr.write(
    json ? `${JSON.stringify(errorAsProblem(error))}\n` : `ipsec-fleet: ${describeError(error)}\n`,
  );
}

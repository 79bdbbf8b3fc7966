import { AliyunApiError, AliyunTransportError, CredentialsError } from '../aliyun/errors.js';
import { ConfigError } from '../config.js';
import { IpsecFleetError } from '../errors.js';
import { InvalidInputError } from '../validation.js';
import { ExitCode } from './exit-codes.js';

/** Turns any error that reaches the top of a command into one stderr line and an exit code. */
export function exitCodeFor(error: unknown): number {
  if (
    error instanceof InvalidInputError ||
    error instanceof ConfigError ||
    error instanceof CredentialsError
  ) {
    return ExitCode.invalidInput;
  }
  if (error instanceof AliyunApiError) return ExitCode.cloudApiError;
  if (error instanceof AliyunTransportError) return ExitCode.transportError;
  return ExitCode.unexpected;
}

export function describeError(error: unknown): string {
  if (error instanceof IpsecFleetError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

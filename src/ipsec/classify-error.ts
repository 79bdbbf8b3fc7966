import { AliyunApiError, AliyunTransportError } from '../aliyun/errors.js';

/**
 * What an error from an UpdateIpsecServer/ListIpsecServers call means for the pipeline
 * (DESIGN.md, "Errors from the cloud, and what we do"). Policy (backoff, give-up times) lives in
 * the orchestrator; this only names the class.
 */
export type ErrorClass =
  | 'dry-run-passed'
  | 'busy'
  | 'account-locked'
  | 'throttled'
  | 'transient'
  | 'permanent';

export const ERROR_CLASSES: readonly ErrorClass[] = [
  'dry-run-passed',
  'busy',
  'account-locked',
  'throttled',
  'transient',
  'permanent',
];

/**
 * Busy: the gateway is in the middle of another change. Besides the documented
 * VpnGateway.Configuring, VPC answers OperationConflict when two operations on one instance race,
 * and LastTokenProcessing when a retried request finds its ClientToken's first attempt still
 * running; both clear by waiting, exactly like Configuring.
 */
const BUSY_CODES = new Set(['VpnGateway.Configuring', 'OperationConflict', 'LastTokenProcessing']);
const TRANSIENT_CODES = new Set(['ServiceUnavailable', 'InternalError']);

/**
 * Classifies by the cloud's code first and the HTTP status second: `Throttling.User` comes with
 * a 400 and must still count as throttling, while an unknown code is judged by its status (5xx is
 * the server's trouble, so transient; a 2xx we could not read is an unknown outcome, so transient;
 * any other status is a verdict on the request, so permanent).
 *
 * Transport errors are transient: the request may or may not have reached the cloud, and a retry
 * is safe because an apply reuses its ClientToken (invariant 4). That includes TRANSPORT_ABORTED:
 * the cancelling caller knows why it cancelled (shutdown, step deadline, user cancel) and checks
 * its own signal before acting on the class, while for everyone else an aborted call is exactly
 * an outcome-unknown one. Classing it permanent would fail a change because a worker was told to
 * stop, which invariant 8 forbids. TLS and DNS failures are included: they are usually passing
 * (handshake reset, resolver hiccup), and a lasting misconfiguration still ends after the
 * transient policy's attempts.
 *
 * Anything that is not from the cloud or the transport (bad input, a malformed response, a bug)
 * is permanent: retrying the same thing would fail the same way.
 */
export function classifyError(error: unknown): ErrorClass {
  if (error instanceof AliyunTransportError) return 'transient';
  if (!(error instanceof AliyunApiError)) return 'permanent';

  const { code, httpStatus } = error;
  if (code === 'DryRunOperation') return 'dry-run-passed';
  if (BUSY_CODES.has(code)) return 'busy';
  if (code === 'VpnGateway.FinancialLocked') return 'account-locked';
  if (code === 'Throttling' || code.startsWith('Throttling.')) return 'throttled';
  if (TRANSIENT_CODES.has(code)) return 'transient';
  if (isPermanentCode(code)) return 'permanent';
  // An error with a success status is a 2xx we could not read: a proxy's or portal's page in place
  // of the cloud's answer. Whether the call took effect is unknown, as after a lost response, and
  // a retry is as safe (the apply reuses its ClientToken); calling it permanent would end a change
  // as failed that may well have been applied.
  if (httpStatus >= 200 && httpStatus <= 299) return 'transient';
  if (httpStatus === 429) return 'throttled';
  if (httpStatus >= 500 && httpStatus <= 599) return 'transient';
  return 'permanent';
}

/**
 * Codes that are a verdict on the request whatever the status says (a 5xx-wrapped
 * `InvalidParameter` is still the request's fault). Listed so the table in DESIGN.md reads
 * one-to-one here.
 */
function isPermanentCode(code: string): boolean {
  return (
    code === 'Forbidden' ||
    code.startsWith('Forbidden.') ||
    code.startsWith('IllegalParam') ||
    code.startsWith('InvalidParameter') ||
    // MissingParameter, MissingParameter.X and the MissingXxx family
    code.startsWith('Missing') ||
    code.endsWith('.NotFound') ||
    code === 'IdempotentParameterMismatch' ||
    code === 'SignatureDoesNotMatch' ||
    code === 'IncompleteSignature' ||
    code === 'SignatureNonceUsed' ||
    code.startsWith('InvalidAccessKeyId') ||
    code.startsWith('InvalidSecurityToken') ||
    code.startsWith('InvalidTimeStamp')
  );
}

/** Whether the error is the caller's own cancellation (see classifyError on why that is transient). */
export function isAbort(error: unknown): boolean {
  return error instanceof AliyunTransportError && error.code === 'TRANSPORT_ABORTED';
}

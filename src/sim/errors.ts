import { IpsecFleetError } from '../errors.js';

/**
 * An error answer of the simulated cloud: `code` is the cloud's own error code (what the SDKs
 * expose as `code`), `status` its HTTP status. Codes, statuses and messages are the real ones
 * (reference/facts.md, the seed's error table, the platform's common error codes) so that a
 * client's error handling is exercised as it will be in production.
 */
export class SimError extends IpsecFleetError {
  readonly status: number;
  /** Extra response headers, e.g. a throttled call's retry hint. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

/**
 * A SimError without a stack trace. These are answers, not bugs: the simulator gives one for
 * every refused call (every passed dry run is one), and capturing a stack each time cost about
 * 7% of its CPU in `npm run bench:sim`. Synchronous, so the global limit is restored before any
 * other code runs.
 */
function answer(status: number, code: string, message: string, headers?: Record<string, string>): SimError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new SimError(status, code, message, headers);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * An answer that never varies, made once: nothing in it depends on the call, and answers are
 * only read, so every call may give the same one (every passed dry run is DryRunOperation).
 */
function fixed(status: number, code: string, message: string): () => SimError {
  const error = answer(status, code, message);
  return () => error;
}

/** The catalogue, one factory per code, so every place that answers a code answers it alike. */
export const simErrors = {
  // --- authentication (common to every action)
  missingCommonParameter: (name: string) =>
    answer(400, `Missing${name}`, `${name} is mandatory for this action.`),
  incompleteSignature: (detail: string) =>
    answer(
      400,
      'IncompleteSignature',
      `The request signature does not conform to Aliyun standards. ${detail}`,
    ),
  invalidSignatureMethod: (method: string) =>
    answer(400, 'InvalidSignatureMethod', `Specified signature method (${method}) is not supported.`),
  accessKeyNotFound: fixed(404, 'InvalidAccessKeyId.NotFound', 'Specified access key is not found.'),
  signatureDoesNotMatch: (stringToSign: string) =>
    answer(
      400,
      'SignatureDoesNotMatch',
      `Specified signature is not matched with our calculation. server string to sign is:${stringToSign}`,
    ),
  nonceUsed: fixed(400, 'SignatureNonceUsed', 'Specified signature nonce was used already.'),
  timestampFormat: fixed(
    400,
    'InvalidTimeStamp.Format',
    'Specified time stamp or date value is not well formatted.',
  ),
  timestampExpired: fixed(400, 'InvalidTimeStamp.Expired', 'Specified time stamp or date value is expired.'),
  securityTokenMismatch: fixed(
    400,
    'InvalidSecurityToken.MismatchWithAccessKey',
    'Specified security token mismatch with the access key.',
  ),
  // --- routing and quotas
  unsupportedMethod: (method: string) =>
    answer(400, 'UnsupportedHTTPMethod', `Specified http method (${method}) is not supported.`),
  invalidVersion: (version: string) =>
    answer(400, 'InvalidVersion', `Specified parameter Version (${version}) is not valid.`),
  actionNotFound: fixed(
    404,
    'InvalidAction.NotFound',
    'Specified api is not found, please check your url and method.',
  ),
  throttled: (retryAfterMs: number) =>
    answer(400, 'Throttling.User', 'Request was denied due to user flow control.', {
      'x-acs-retry-after': String(retryAfterMs),
    }),
  internalError: fixed(
    500,
    'InternalError',
    'The request processing has failed due to some unknown error, exception or failure.',
  ),
  serviceUnavailable: fixed(
    503,
    'ServiceUnavailable',
    'The request has failed due to a temporary failure of the server.',
  ),
  // --- parameters
  missingParameter: (name: string) =>
    answer(
      400,
      'MissingParameter',
      `The input parameter "${name}" that is mandatory for processing this request is not supplied.`,
    ),
  invalidParameter: (name: string, rule: string) =>
    answer(400, 'InvalidParameter', `The specified parameter "${name}" is invalid: ${rule}.`),
  illegalParam: (name: string, value: string) =>
    answer(400, `IllegalParam.${name}`, `The specified "${name}" (${value}) is invalid.`),
  // --- UpdateIpsecServer (the seed's table) and the resource
  ipsecServerNotFound: (id: string) =>
    answer(404, 'InvalidIpsecServerId.NotFound', `The specified IPsec server (${id}) does not exist.`),
  forbidden: fixed(403, 'Forbidden', 'User not authorized to operate on the specified resource.'),
  financialLocked: fixed(400, 'VpnGateway.FinancialLocked', 'The specified service is financial locked.'),
  configuring: fixed(400, 'VpnGateway.Configuring', 'The specified service is configuring.'),
  idempotentParameterMismatch: fixed(
    400,
    'IdempotentParameterMismatch',
    'The request uses the same client token as a previous, but non-identical request.',
  ),
  lastTokenProcessing: fixed(400, 'LastTokenProcessing', 'The last token request is processing.'),
  dryRunPassed: fixed(400, 'DryRunOperation', 'Request validation has been passed with DryRun flag set.'),
} as const;

import { describe, expect, it } from 'vitest';
import {
  AliyunApiError,
  AliyunTransportError,
  CredentialsError,
  type TransportErrorCode,
} from '../../src/aliyun/errors.js';
import { IpsecFleetError } from '../../src/errors.js';
import { classifyError, type ErrorClass, isAbort } from '../../src/ipsec/classify-error.js';
import {
  DryRunNotHonouredError,
  IpsecResponseError,
  IpsecServerNotFoundError,
} from '../../src/ipsec/errors.js';
import { InvalidInputError } from '../../src/validation.js';

const api = (code: string, httpStatus: number) =>
  new AliyunApiError({ code, httpStatus, message: `${code} message`, requestId: 'req-1' });

describe('classifyError: cloud error codes', () => {
  it.each<[code: string, httpStatus: number, expected: ErrorClass]>([
    ['DryRunOperation', 400, 'dry-run-passed'],
    ['VpnGateway.Configuring', 400, 'busy'],
    ['OperationConflict', 400, 'busy'],
    ['LastTokenProcessing', 400, 'busy'],
    ['VpnGateway.FinancialLocked', 400, 'account-locked'],
    ['Throttling', 400, 'throttled'],
    ['Throttling.User', 400, 'throttled'],
    ['Throttling.Api', 503, 'throttled'],
    ['SomethingNew', 429, 'throttled'],
    ['ServiceUnavailable', 503, 'transient'],
    ['ServiceUnavailable', 400, 'transient'],
    ['InternalError', 500, 'transient'],
    ['UnknownError', 500, 'transient'],
    ['SomethingNew', 502, 'transient'],
    ['SomethingNew', 504, 'transient'],
    ['Forbidden', 403, 'permanent'],
    ['Forbidden.RAM', 403, 'permanent'],
    ['IllegalParam.LocalSubnet', 400, 'permanent'],
    ['IllegalParam.ClientIpPool', 400, 'permanent'],
    ['InvalidParameter', 400, 'permanent'],
    ['InvalidParameter.IkeConfig', 400, 'permanent'],
    ['InvalidParameterValue', 400, 'permanent'],
    ['MissingParameter', 400, 'permanent'],
    ['MissingIpsecServerId', 400, 'permanent'],
    ['InvalidIpsecServerId.NotFound', 404, 'permanent'],
    ['VpnGateway.NotFound', 400, 'permanent'],
    ['InvalidAccessKeyId.NotFound', 404, 'permanent'],
    ['InvalidAccessKeyId', 400, 'permanent'],
    ['SignatureDoesNotMatch', 400, 'permanent'],
    ['IncompleteSignature', 400, 'permanent'],
    ['SignatureNonceUsed', 400, 'permanent'],
    ['InvalidTimeStamp.Expired', 400, 'permanent'],
    ['InvalidSecurityToken.Expired', 400, 'permanent'],
    ['IdempotentParameterMismatch', 400, 'permanent'],
    // A verdict on the request stays one even if a gateway wraps it in a 5xx.
    ['InvalidParameter', 500, 'permanent'],
    // A success status we could not read (a proxy's page): the outcome is unknown, so retry.
    ['HTTP.200.NotJson', 200, 'transient'],
    ['HTTP.204.NotJson', 204, 'transient'],
    ['SomethingNew', 400, 'permanent'],
    ['SomethingNew', 404, 'permanent'],
    ['SomethingNew', 409, 'permanent'],
    ['SomethingNew', 0, 'permanent'],
  ])('%s (HTTP %i) → %s', (code, httpStatus, expected) => {
    expect(classifyError(api(code, httpStatus))).toBe(expected);
  });
});

describe('classifyError: transport errors', () => {
  it.each<[TransportErrorCode, ErrorClass]>([
    ['TRANSPORT_TIMEOUT', 'transient'],
    ['TRANSPORT_RESET', 'transient'],
    ['TRANSPORT_REFUSED', 'transient'],
    ['TRANSPORT_DNS', 'transient'],
    ['TRANSPORT_TLS', 'transient'],
    ['TRANSPORT_OTHER', 'transient'],
    // Outcome unknown, like a timeout; the canceller checks its own signal (see classify-error.ts).
    ['TRANSPORT_ABORTED', 'transient'],
  ])('%s → %s', (code, expected) => {
    expect(classifyError(new AliyunTransportError(code, 'x'))).toBe(expected);
  });

  it('tells the caller its own cancellation apart', () => {
    expect(isAbort(new AliyunTransportError('TRANSPORT_ABORTED', 'aborted'))).toBe(true);
    expect(isAbort(new AliyunTransportError('TRANSPORT_TIMEOUT', 'timeout'))).toBe(false);
    expect(isAbort(new DOMException('aborted', 'AbortError'))).toBe(false);
  });
});

describe('classifyError: everything else is permanent', () => {
  it.each<[string, unknown]>([
    ['invalid input', new InvalidInputError('params', [{ field: 'Psk', rule: 'x' }])],
    ['malformed response', new IpsecResponseError('ListIpsecServers', [{ field: 'RequestId', rule: 'x' }])],
    ['server not found', new IpsecServerNotFoundError('cn-shanghai', 'iss-1')],
    ['dry run not honoured', new DryRunNotHonouredError('req-1')],
    ['missing credentials', new CredentialsError('ALIBABA_CLOUD_ACCESS_KEY_ID is not set')],
    ['another fleet error named like a cloud code', new IpsecFleetError('Throttling', 'not from the cloud')],
    ['a plain Error', new Error('bug')],
    ['a TypeError', new TypeError('bug')],
    ['a string', 'Throttling'],
    ['an object shaped like a cloud error', { code: 'Throttling', httpStatus: 429 }],
    ['undefined', undefined],
  ])('%s', (_label, error) => {
    expect(classifyError(error)).toBe('permanent');
  });
});

describe('domain errors carry stable codes', () => {
  it.each<[IpsecFleetError, string]>([
    [
      new IpsecResponseError('ListIpsecServers', [{ field: 'RequestId', rule: 'is required' }]),
      'IPSEC_BAD_RESPONSE',
    ],
    [new IpsecServerNotFoundError('cn-shanghai', 'iss-1'), 'IPSEC_SERVER_NOT_FOUND'],
    [new DryRunNotHonouredError('req-1'), 'IPSEC_DRY_RUN_NOT_HONOURED'],
  ])('%s', (error, code) => {
    expect(error).toBeInstanceOf(IpsecFleetError);
    expect(error.code).toBe(code);
  });

  it('names the field in a response error', () => {
    expect(
      new IpsecResponseError('ListIpsecServers', [{ field: 'RequestId', rule: 'is required' }]).message,
    ).toBe('unexpected ListIpsecServers response: RequestId: is required');
  });
});

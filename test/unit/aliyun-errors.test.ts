import { afterEach, describe, expect, it } from 'vitest';
import { AliyunApiError, AliyunTransportError } from '../../src/aliyun/errors.js';
import { IpsecFleetError } from '../../src/errors.js';

const fields = {
  code: 'DryRunOperation',
  message: 'Request validation has been passed with DryRun flag set.',
  httpStatus: 400,
  requestId: 'req-1',
};

describe('AliyunApiError', () => {
  const defaultLimit = Error.stackTraceLimit;
  afterEach(() => {
    Error.stackTraceLimit = defaultLimit;
  });

  it('is an IpsecFleetError with the cloud code, name and message', () => {
    const error = new AliyunApiError(fields);
    expect(error).toBeInstanceOf(AliyunApiError);
    expect(error).toBeInstanceOf(IpsecFleetError);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'AliyunApiError', code: 'DryRunOperation', httpStatus: 400 });
    expect(error.message).toBe(fields.message);
    expect(String(error)).toBe(`AliyunApiError: ${fields.message}`);
  });

  it('captures no stack frames, and leaves the stack limit as it found it', () => {
    Error.stackTraceLimit = 7;
    const error = new AliyunApiError(fields);
    expect(error.stack).toBe(`AliyunApiError: ${fields.message}`);
    expect(Error.stackTraceLimit).toBe(7);
    // Our own failures still carry their frames.
    expect(new AliyunTransportError('TRANSPORT_RESET', 'x').stack?.split('\n').length).toBeGreaterThan(1);
  });
});

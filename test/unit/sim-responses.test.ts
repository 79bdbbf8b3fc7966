import type { ServerResponse } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simErrors } from '../../src/sim/errors.js';
import { errorBody, errorJson, newRequestId, sendError } from '../../src/sim/responses.js';

describe('errorJson', () => {
  it('is JSON.stringify of the error body, byte for byte', () => {
    const errors = [
      simErrors.dryRunPassed(),
      simErrors.throttled(250),
      simErrors.illegalParam('LocalSubnet', '10.0.0.0/8 "quoted" \\ \u2028 测试'),
      simErrors.invalidVersion('</x>&<'),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...errors),
        fc.oneof(
          fc.uuid().map((id) => id.toUpperCase()),
          fc.string(),
        ),
        fc.oneof(fc.constant('127.0.0.1:8080'), fc.string()),
        (error, requestId, hostId) => {
          expect(errorJson(error, requestId, hostId)).toBe(
            JSON.stringify(errorBody(error, requestId, hostId)),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('newRequestId', () => {
  it('is an upper-case version 4 UUID, a new one each call', () => {
    const ids = new Set<string>();
    for (let index = 0; index < 2000; index++) {
      const id = newRequestId();
      expect(id).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(2000);
  });
});

describe('sendError', () => {
  /** What writeHead and end were given, from a stand-in that only records them. */
  function sent(write: (res: ServerResponse) => void): { status: number; headers: unknown[]; text: string } {
    const record = { status: 0, headers: [] as unknown[], text: '' };
    const res = {
      destroyed: false,
      headersSent: false,
      writeHead(status: number, headers: unknown[]) {
        record.status = status;
        record.headers = headers;
      },
      end(text: string) {
        record.text = text;
      },
    };
    write(res as unknown as ServerResponse);
    return record;
  }

  it('sends the JSON error body with its exact content-length in bytes, and the retry hint', () => {
    const errors = [
      simErrors.dryRunPassed(),
      simErrors.throttled(250),
      simErrors.illegalParam('LocalSubnet', '10.0.0.0/8 "quoted" \\ \u2028 测试 😀'),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...errors),
        fc.oneof(fc.constant(newRequestId()), fc.string()),
        fc.oneof(fc.constant('127.0.0.1:8080'), fc.string({ unit: 'binary' })),
        (error, requestId, hostId) => {
          const { status, headers, text } = sent((res) => sendError(res, requestId, hostId, error, 'JSON'));
          expect(status).toBe(error.status);
          expect(text).toBe(JSON.stringify(errorBody(error, requestId, hostId)));
          expect(headers).toEqual([
            'content-type',
            'application/json;charset=utf-8',
            'content-length',
            Buffer.byteLength(text),
            'x-acs-request-id',
            requestId,
            ...Object.entries(error.headers ?? {}).flat(),
          ]);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simErrors } from '../../src/sim/errors.js';
import { errorBody, errorJson, newRequestId } from '../../src/sim/responses.js';

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

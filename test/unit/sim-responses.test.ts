import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simErrors } from '../../src/sim/errors.js';
import { errorBody, errorJson, newRequestId } from '../../src/sim/responses.js';
import { credentialsOf, type SimServer, sendV3, useSimulators } from '../support/sim-harness.js';

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

describe('error answers over HTTP', () => {
  const sims = useSimulators();

  it('carry the JSON error body with its exact content-length in bytes and the request id', async () => {
    const sim = await sims.start({ servers: 2 });
    const server = sim.servers[0] as SimServer;
    const base = { RegionId: server.regionId, IpsecServerId: server.ipsecServerId };
    const odd = '10.0.0.0/8 "quoted" \\ \u2028 测试 😀';
    const answers = await Promise.all([
      sendV3(sim.endpoint, credentialsOf(sim), 'UpdateIpsecServer', {
        ...base,
        DryRun: 'true',
        LocalSubnet: '192.168.9.0/24',
      }),
      sendV3(sim.endpoint, credentialsOf(sim), 'UpdateIpsecServer', { ...base, LocalSubnet: odd }),
    ]);
    expect(answers.map((answer) => answer.json.Code)).toEqual([
      'DryRunOperation',
      'IllegalParam.LocalSubnet',
    ]);
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.text));
      expect(answer.headers['x-acs-request-id']).toBe(answer.json.RequestId);
      expect(answer.text).toBe(
        errorJson(
          answer.json.Code === 'DryRunOperation'
            ? simErrors.dryRunPassed()
            : simErrors.illegalParam('LocalSubnet', odd),
          String(answer.json.RequestId),
          String(answer.json.HostId),
        ),
      );
    }
  });
});

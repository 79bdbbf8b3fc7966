import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseListWireParams } from '../../src/ipsec/wire.js';
import { listIpsecServers, parseListParams } from '../../src/sim/actions/list-ipsec-servers.js';
import type { ActionContext, ActionResult } from '../../src/sim/actions/types.js';
import { updateIpsecServer } from '../../src/sim/actions/update-ipsec-server.js';
import { NO_FAULTS_DRAW } from '../../src/sim/faults.js';
import { generateFleet } from '../../src/sim/fleet.js';
import { simulatorOptionsSchema } from '../../src/sim/options.js';
import { SimState } from '../../src/sim/state.js';
import { InvalidInputError } from '../../src/validation.js';

function outcome(parse: (wire: Record<string, string>) => unknown, wire: Record<string, string>): unknown {
  try {
    return { value: parse(wire) };
  } catch (error) {
    if (error instanceof InvalidInputError) return { message: error.message, issues: error.issues };
    throw error;
  }
}

describe('parseListParams', () => {
  it('answers every wire input as parseListWireParams does', () => {
    const name = fc.constantFrom(
      'IpsecServerId.1',
      'IpsecServerId.2',
      'IpsecServerId.3',
      'IpsecServerId.10',
      'IpsecServerId.0',
      'IpsecServerId.01',
      'IpsecServerId.x',
      'IpsecServerId.',
      'IpsecServerId',
      'RegionId',
      'MaxResults',
      'NextToken',
      'VpnGatewayId',
      'Bogus',
    );
    const value = fc.constantFrom('iss-1', 'iss-2', '', 'cn-shanghai', 'Shanghai', '20', '0', '7', 'abc');
    const wire = fc.tuple(fc.dictionary(name, value, { maxKeys: 8 }), fc.nat(12)).map(([fields, items]) => {
      // Mostly the shape clients send: RegionId and IpsecServerId.1..N, sometimes with a gap.
      const built: Record<string, string> = { RegionId: 'cn-shanghai' };
      for (let index = 1; index <= items; index++) built[`IpsecServerId.${index}`] = `iss-${index}`;
      return { ...built, ...fields };
    });
    let accepted = 0;
    fc.assert(
      fc.property(wire, (input) => {
        const expected = outcome(parseListWireParams, input);
        expect(outcome(parseListParams, input)).toEqual(expected);
        if ('value' in (expected as object)) accepted++;
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('ListIpsecServers answers', () => {
  const options = simulatorOptionsSchema.parse({ servers: 30, faults: { configuringMs: 0 } });
  const accessKeyIds = options.accessKeys.map((key) => key.accessKeyId);
  const records = generateFleet({ seed: 7, servers: 30, regions: options.regions, accessKeyIds });
  const key = options.accessKeys[0] as (typeof options.accessKeys)[number];
  let calls = 0;

  function call(
    state: SimState,
    handler: (context: ActionContext) => unknown,
    params: Record<string, string>,
  ): ActionResult {
    const requestId = `REQUEST-${++calls}`;
    const context: ActionContext = {
      state,
      key,
      params,
      requestId,
      now: 1_000 + calls,
      draw: NO_FAULTS_DRAW,
    };
    return handler(context) as ActionResult;
  }

  it('send as JSON exactly JSON.stringify of their body, pages and changed servers included', () => {
    const state = new SimState(options, records, new Map(), () => 0, undefined);
    const mine = records.filter((record) => record.ownerAccessKeyId === key.accessKeyId);
    const regionId = mine[0]?.RegionId as string;
    const inRegion = mine.filter((record) => record.RegionId === regionId);
    const check = (params: Record<string, string>) => {
      const result = call(state, listIpsecServers, params);
      expect(result.json).toBe(JSON.stringify(result.body));
      return result;
    };
    check({ RegionId: regionId });
    const paged = check({ RegionId: regionId, MaxResults: '2' });
    check({ RegionId: regionId, MaxResults: '2', NextToken: paged.body.NextToken as string });
    const ids = Object.fromEntries(
      inRegion.map((record, index) => [`IpsecServerId.${index + 1}`, record.IpsecServerId]),
    );
    const before = check({ RegionId: regionId, ...ids });
    // A server changed by an apply is listed as it is now.
    const target = inRegion[0]?.IpsecServerId as string;
    call(state, updateIpsecServer, {
      IpsecServerId: target,
      RegionId: regionId,
      IpsecServerName: 'renamed-测试',
      IkeConfig: '{"IkeLifetime":600}',
      ClientToken: 'token-1',
    });
    const after = check({ RegionId: regionId, ...ids });
    expect(after.json).not.toBe(before.json);
    expect(after.json).toContain('"IpsecServerName":"renamed-测试"');
    expect(after.json).toContain('"IkeLifetime":600');
  });
});

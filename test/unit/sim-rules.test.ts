import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { splitCidrList } from '../../src/ipsec/cidr.js';
import type { UpdateIpsecServerParams } from '../../src/ipsec/update-params.js';
import { SimError } from '../../src/sim/errors.js';
import type { SimServerRecord } from '../../src/sim/fleet.js';
import { checkAddressPlan, cidrsOverlap } from '../../src/sim/rules.js';

describe('checkAddressPlan', () => {
  const cidr = fc.constantFrom(
    '10.0.0.0/8',
    '10.1.0.0/16',
    '192.168.0.0/24',
    '192.168.1.0/24',
    '172.16.0.0/12',
    '0.0.0.0/0',
    'bad',
    '10.0.0.0/16,10.1.0.0/16',
  );
  const list = fc.array(cidr, { minLength: 1, maxLength: 3 }).map((entries) => entries.join(','));

  /** The rule as first written: every entry of the list against the pool, one pair at a time. */
  function refusedField(record: SimServerRecord, params: UpdateIpsecServerParams): string | undefined {
    const pool = params.ClientIpPool ?? record.ClientIpPool;
    if (params.LocalSubnet !== undefined) {
      return splitCidrList(params.LocalSubnet).some((subnet) => cidrsOverlap(subnet, pool))
        ? 'LocalSubnet'
        : undefined;
    }
    if (params.ClientIpPool !== undefined) {
      const pool = params.ClientIpPool;
      return splitCidrList(record.LocalSubnet).some((subnet) => cidrsOverlap(subnet, pool))
        ? 'ClientIpPool'
        : undefined;
    }
    return undefined;
  }

  it('refuses exactly what checking each pair of blocks refuses', () => {
    fc.assert(
      fc.property(
        list,
        cidr,
        fc.option(list, { nil: undefined }),
        fc.option(cidr, { nil: undefined }),
        (recordSubnet, recordPool, LocalSubnet, ClientIpPool) => {
          const record = { LocalSubnet: recordSubnet, ClientIpPool: recordPool } as SimServerRecord;
          const params: UpdateIpsecServerParams = { IpsecServerId: 'iss-1', RegionId: 'cn-shanghai' };
          if (LocalSubnet !== undefined) params.LocalSubnet = LocalSubnet;
          if (ClientIpPool !== undefined) params.ClientIpPool = ClientIpPool;
          let refused: string | undefined;
          try {
            checkAddressPlan(record, params);
          } catch (error) {
            if (!(error instanceof SimError)) throw error;
            refused = error.code.replace('IllegalParam.', '');
          }
          expect(refused).toBe(refusedField(record, params));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

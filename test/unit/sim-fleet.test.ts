import { describe, expect, it } from 'vitest';
import { ipv4NetworkCidrProblem } from '../../src/ipsec/cidr.js';
import { ipsecServerSchema } from '../../src/ipsec/server.js';
import { clientIpPoolFor, generateFleet, toListedServer } from '../../src/sim/fleet.js';
import { cidrsOverlap } from '../../src/sim/rules.js';

const spec = { seed: 1, servers: 6, regions: ['cn-shanghai', 'cn-hangzhou'], accessKeyIds: ['AK1', 'AK2'] };

describe('generateFleet', () => {
  it('is a function of its spec', () => {
    expect(generateFleet(spec)).toEqual(generateFleet(spec));
    expect(generateFleet({ ...spec, seed: 2 })[0]?.IpsecServerId).not.toBe(
      generateFleet(spec)[0]?.IpsecServerId,
    );
  });

  it('gives every key servers in every region, with well-formed ids and defaults', () => {
    const fleet = generateFleet(spec);
    const pairs = new Set(fleet.map((server) => `${server.ownerAccessKeyId}/${server.RegionId}`));
    expect(pairs.size).toBe(4);
    for (const server of fleet) {
      expect(server.IpsecServerId).toMatch(/^iss-[a-z0-9]{20}$/);
      expect(server.VpnGatewayId).toMatch(/^vpn-[a-z0-9]{20}$/);
      expect(server.Psk).toHaveLength(16);
      expect(server.IkeConfig).toMatchObject({ IkeVersion: 'ikev2', IkeMode: 'main', IkeLifetime: 86400 });
      expect(cidrsOverlap(server.LocalSubnet, server.ClientIpPool)).toBe(false);
      expect(ipsecServerSchema.safeParse(toListedServer(server)).success).toBe(true);
    }
  });

  it('gives distinct, valid client pools even to large fleets', () => {
    const pools = Array.from({ length: 30_000 }, (_, index) => clientIpPoolFor(index));
    expect(new Set(pools).size).toBe(pools.length);
    for (const pool of [pools[0], pools[255], pools[256], pools[5000], pools[29_999]]) {
      expect(ipv4NetworkCidrProblem(pool as string)).toBeUndefined();
    }
  });
});

describe('cidrsOverlap', () => {
  it.each([
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.0.0.0/8', true],
    ['10.1.0.0/16', '10.2.0.0/16', false],
    ['0.0.0.0/0', '192.168.0.0/24', true],
    ['192.168.0.0/24', '192.168.1.0/24', false],
    ['192.168.0.0/23', '192.168.1.0/24', true],
  ])('%s vs %s → %s', (a, b, expected) => {
    expect(cidrsOverlap(a, b)).toBe(expected);
  });
});

import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import {
  cidrSetKey,
  ipv4NetworkCidrListSchema,
  ipv4NetworkCidrProblem,
  isIpv4NetworkCidr,
} from '../../src/ipsec/cidr.js';
import { ikeIdentityProblem, isFqdn, isIpAddress } from '../../src/ipsec/host-id.js';
import { isFourPartDecimal, networkAddress } from '../../src/ipsec/ipv4.js';

describe('IPv4 network CIDR', () => {
  it.each([
    ['0.0.0.0/0', true],
    ['10.0.0.0/8', true],
    ['192.168.1.0/24', true],
    ['192.168.1.128/25', true],
    ['192.168.1.129/25', false],
    ['255.255.255.255/32', true],
    ['192.168.1.0/33', false],
    ['192.168.1.0/024', false],
    ['192.168.1.0/', false],
    ['192.168.1.0', false],
    ['/24', false],
    ['192.168.1/24', false],
    ['0x0a.0.0.0/8', false],
    [' 10.0.0.0/8', false],
    ['10.0.0.0/8/8', false],
  ])('%s → %s', (text, ok) => {
    expect(isIpv4NetworkCidr(text)).toBe(ok);
  });

  it('suggests the network address when host bits are set', () => {
    expect(ipv4NetworkCidrProblem('192.168.1.5/24')).toBe(
      'must be a network address, e.g. 192.168.1.0/24 (got 192.168.1.5/24)',
    );
    expect(ipv4NetworkCidrProblem('10.1.2.3/8')).toBe(
      'must be a network address, e.g. 10.0.0.0/8 (got 10.1.2.3/8)',
    );
  });

  it('keys a CIDR list as a set', () => {
    expect(cidrSetKey('b.0.0.0/8, 10.0.0.0/8,10.0.0.0/8')).toBe(cidrSetKey('10.0.0.0/8,b.0.0.0/8'));
  });
});

describe('IKE identities', () => {
  it.each([
    ['47.22.0.1', true],
    ['2001:db8::1', true],
    ['::1', true],
    ['vpn.example.com', true],
    ['vpn', true],
    ['xn--fiqs8s.cn', true],
    ['1.2.3.400', false],
    ['1.2.3', false],
    ['-vpn.example.com', false],
    ['vpn_1.example.com', false],
    ['vpn.example.com.', false],
    ['', false],
    ['中文.cn', false],
  ])('%s → %s', (text, ok) => {
    expect(ikeIdentityProblem(text) === undefined).toBe(ok);
  });

  it('separates addresses from names', () => {
    expect(isIpAddress('10.0.0.1')).toBe(true);
    expect(isIpAddress('vpn.example.com')).toBe(false);
    expect(isFqdn('10.0.0.1')).toBe(false);
    expect(isFqdn('a'.repeat(63))).toBe(true);
    expect(isFqdn('a'.repeat(64))).toBe(false);
  });
});

/**
 * ipv4.ts reads addresses by hand for speed; these hold it to ipaddr.js's answers, which the rules
 * were first written with, over texts made of the pieces where the two could part ways.
 */
describe('strict dotted-quad IPv4, as ipaddr.js reads it', () => {
  const part = fc.oneof(
    fc.integer({ min: 0, max: 300 }).map(String),
    fc.constantFrom(
      '00',
      '01',
      '007',
      '0x0a',
      '0xff',
      '',
      ' 1',
      '1 ',
      '+1',
      '-1',
      '1e2',
      '١',
      '99999999999999999999',
    ),
  );
  const address = fc.oneof(
    fc.array(part, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
    fc.string({ maxLength: 20 }),
  );

  it('agrees with ipaddr.IPv4.isValidFourPartDecimal', () => {
    fc.assert(
      fc.property(address, (text) => {
        expect(isFourPartDecimal(text)).toBe(ipaddr.IPv4.isValidFourPartDecimal(text));
      }),
      { numRuns: 5_000 },
    );
  });

  it('finds the network address ipaddr.IPv4.networkAddressFromCIDR finds', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(fc.tuple(octet, octet, octet, octet), fc.integer({ min: 0, max: 32 }), (octets, prefix) => {
        const value = octets.reduce((sum, next) => sum * 256 + next, 0);
        expect(networkAddress(value, prefix)).toBe(
          ipaddr.IPv4.networkAddressFromCIDR(`${octets.join('.')}/${prefix}`).toString(),
        );
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('LocalSubnet lists', () => {
  it('answers a text seen before exactly as the first time, good or bad', () => {
    const good = '10.0.0.0/8, 172.16.0.0/12';
    const bad = '10.0.0.0/8,10.0.0.1/8,,10.0.0.0/8';
    for (let round = 0; round < 3; round++) {
      expect(ipv4NetworkCidrListSchema.parse(good)).toBe('10.0.0.0/8,172.16.0.0/12');
      const result = ipv4NetworkCidrListSchema.safeParse(bad);
      expect(result.success).toBe(false);
      expect(result.error?.issues.map((issue) => issue.message)).toEqual([
        'entry 2: must be a network address, e.g. 10.0.0.0/8 (got 10.0.0.1/8)',
        'entry 3 is empty; separate CIDR blocks with single commas',
        'entry 4: must not repeat a CIDR block (10.0.0.0/8 is listed twice)',
      ]);
    }
  });
});

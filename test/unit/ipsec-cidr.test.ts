import { describe, expect, it } from 'vitest';
import { cidrSetKey, ipv4NetworkCidrProblem, isIpv4NetworkCidr } from '../../src/ipsec/cidr.js';
import { ikeIdentityProblem, isFqdn, isIpAddress } from '../../src/ipsec/host-id.js';

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

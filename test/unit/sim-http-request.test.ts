import { parse as parseQuery } from 'node:querystring';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodePairs } from '../../src/sim/http-request.js';

/**
 * What the simulator has always read a query as: querystring.parse, a repeated name keeping its first
 * value. Written here rather than taken from http-request.ts, whose fallback it also is: an oracle
 * that shares code with what it judges would agree with it when both are wrong.
 */
function reference(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const parsed = parseQuery(text);
  for (const name of Object.keys(parsed)) {
    const value = parsed[name];
    if (typeof value === 'string') result[name] = value;
    else if (Array.isArray(value) && value.length > 0) result[name] = value[0] as string;
  }
  return result;
}

/** Own keys in order with their values: toEqual alone would not see a different key order. */
function entries(object: Record<string, string>): [string, string][] {
  return Object.keys(object).map((key) => [key, object[key] as string]);
}

describe('reading a query or form body', () => {
  // The pieces where decoders differ: separators, escapes valid and not, `+`, multi-byte text,
  // names an object treats specially, and repeated names.
  const piece = fc.constantFrom(
    'a',
    'B',
    'IpsecServerId',
    'IpsecServerId.1',
    '1',
    '0',
    '=',
    '&',
    '+',
    '%',
    '%2',
    '%2F',
    '%2f',
    '%41',
    '%zz',
    '%E4%B8%AD',
    '%E4%B8',
    '%C3',
    '%2B',
    '%26',
    '%3D',
    '中',
    '😀',
    ' ',
    '__proto__',
    'constructor',
    'toString',
  );
  const text = fc.array(piece, { maxLength: 24 }).map((pieces) => pieces.join(''));

  it('decodes any query as querystring.parse does, keeping the first of repeated names', () => {
    fc.assert(
      fc.property(text, (query) => {
        expect(entries(decodePairs(query))).toEqual(entries(reference(query)));
      }),
      { numRuns: 5000 },
    );
  });

  it('reads no more than querystring.parse does of a query with over a thousand pairs', () => {
    for (const count of [999, 1000, 1001, 1500]) {
      const pairs = Array.from({ length: count }, (_, index) => `p${index}=${index}`);
      for (const query of [pairs.join('&'), `${pairs.join('&')}&&`, `&${pairs.join('&')}`]) {
        expect(entries(decodePairs(query))).toEqual(entries(reference(query)));
      }
    }
  });

  it('decodes what signing clients send: RFC 3986 escapes, JSON values, list parameters', () => {
    const query =
      'IkeConfig=%7B%22IkeVersion%22%3A%22ikev2%22%2C%22IkeLifetime%22%3A3600%7D' +
      '&IpsecServerId.1=iss-1&IpsecServerId.2=iss-2&LocalSubnet=192.168.1.0%2F24%2C10.0.0.0%2F8&Name=a%20b%2Bc';
    expect(decodePairs(query)).toEqual({
      IkeConfig: '{"IkeVersion":"ikev2","IkeLifetime":3600}',
      'IpsecServerId.1': 'iss-1',
      'IpsecServerId.2': 'iss-2',
      LocalSubnet: '192.168.1.0/24,10.0.0.0/8',
      Name: 'a b+c',
    });
  });
});

/**
 * Strict dotted-quad IPv4 addresses, read by hand: ipaddr.js answers the same questions
 * (`IPv4.isValidFourPartDecimal`, `networkAddressFromCIDR`) by building several address objects
 * per call and, for text that is not an address, by throwing and catching an Error. A rollout of
 * 10,000 targets asks them hundreds of thousands of times (32 LocalSubnet blocks and two IKE
 * identities per target), which made them most of the time taken to accept it.
 * test/unit/ipsec-cidr.test.ts checks both against ipaddr.js over generated texts.
 */

/** What ipaddr.js's isValidFourPartDecimal requires of the text besides each part being ≤ 255. */
const FOUR_PART_DECIMAL = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** The address as a 32-bit unsigned number, or undefined when `text` is not a four-part decimal address. */
export function fourPartDecimalValue(text: string): number | undefined {
  const match = FOUR_PART_DECIMAL.exec(text);
  if (!match) return undefined;
  let value = 0;
  for (let part = 1; part <= 4; part++) {
    // A part of many digits parses to a big number (or Infinity): out of range all the same.
    const octet = Number(match[part]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function isFourPartDecimal(text: string): boolean {
  return fourPartDecimalValue(text) !== undefined;
}

/** The network address of `value` under a prefix of `prefix` bits (0–32), dotted. */
export function networkAddress(value: number, prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${network >>> 24}.${(network >>> 16) & 255}.${(network >>> 8) & 255}.${network & 255}`;
}

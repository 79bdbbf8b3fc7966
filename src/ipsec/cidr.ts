import { TextMemo } from '../text-memo.js';
import { shown, stringField } from './field-rules.js';
import { fourPartDecimalValue, networkAddress } from './ipv4.js';

/**
 * IPv4 CIDR blocks as UpdateIpsecServer takes them (LocalSubnet, ClientIpPool).
 *
 * Only the strict dotted-quad form is accepted (ipv4.ts): a general address parser would also take
 * `10.1/8` or `0x0a.0.0.0/8`, which the cloud does not document and a reviewer would not read the same way.
 * A block must be written as its network address: `192.168.1.5/24` most likely means a typo, and
 * silently sending `192.168.1.0/24` instead would change something nobody asked for.
 */

const CIDR_SHAPE = /^([^/]+)\/(0|[1-9]\d?)$/;

/** Why `text` is not an IPv4 network block, or undefined when it is one. */
export function ipv4NetworkCidrProblem(text: string): string | undefined {
  const shape = CIDR_SHAPE.exec(text);
  if (!shape) return `must be an IPv4 CIDR block such as 192.168.1.0/24 (got ${shown(text)})`;
  const [, address = '', prefixText = ''] = shape;
  const value = fourPartDecimalValue(address);
  if (value === undefined) {
    return `must be an IPv4 CIDR block such as 192.168.1.0/24: ${shown(address)} is not an IPv4 address (got ${shown(text)})`;
  }
  const prefix = Number(prefixText);
  if (prefix > 32) return `prefix length must be 0 to 32 (got ${shown(text)})`;
  const network = networkAddress(value, prefix);
  if (network !== address) {
    return `must be a network address, e.g. ${network}/${prefix} (got ${text})`;
  }
  return undefined;
}

export function isIpv4NetworkCidr(text: string): boolean {
  return ipv4NetworkCidrProblem(text) === undefined;
}

/**
 * Splits a comma-separated list, trimming blanks around entries. Blanks are tolerated because
 * people paste `a, b`; what goes on the wire is the normalized `a,b` (see cidrListSchema).
 */
export function splitCidrList(text: string): string[] {
  return text.split(',').map((entry) => entry.trim());
}

/** Order-insensitive key of a CIDR list: the cloud treats LocalSubnet as a set. */
export function cidrSetKey(text: string): string {
  return [...new Set(splitCidrList(text).filter((entry) => entry !== ''))].sort().join(',');
}

/** One IPv4 network block (ClientIpPool). */
export const ipv4NetworkCidrSchema = stringField().superRefine((value, ctx) => {
  const problem = ipv4NetworkCidrProblem(value);
  if (problem) ctx.addIssue(problem);
});

/** What the rules of a CIDR list found in one text: the problems, or else the normalized list. */
interface CidrListCheck {
  problems: readonly string[];
  normalized: string;
}

function checkCidrList(value: string): CidrListCheck {
  const entries = splitCidrList(value);
  if (entries.length === 1 && entries[0] === '') {
    return {
      problems: ['must list at least one IPv4 CIDR block, e.g. 192.168.1.0/24,10.0.0.0/16'],
      normalized: '',
    };
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  entries.forEach((entry, index) => {
    const where = `entry ${index + 1}:`;
    if (entry === '') {
      problems.push(`entry ${index + 1} is empty; separate CIDR blocks with single commas`);
      return;
    }
    const problem = ipv4NetworkCidrProblem(entry);
    if (problem) {
      problems.push(`${where} ${problem}`);
      return;
    }
    if (seen.has(entry)) problems.push(`${where} must not repeat a CIDR block (${entry} is listed twice)`);
    seen.add(entry);
  });
  return { problems, normalized: entries.join(',') };
}

/**
 * A list's check depends on its text alone, and the same LocalSubnet comes back target after
 * target in a rollout (10,000 of them, 32 blocks each at most): each distinct text is checked once.
 * Bounded: 1,024 texts of up to 2,048 characters.
 */
const cidrListChecks = new TextMemo<CidrListCheck>(1_024, 2_048);

/**
 * A comma-separated list of IPv4 network blocks without duplicates (LocalSubnet). The output is
 * the normalized list (entries trimmed, joined by `,`).
 */
export const ipv4NetworkCidrListSchema = stringField().transform((value, ctx) => {
  const { problems, normalized } = cidrListChecks.remember(value, checkCidrList);
  for (const problem of problems) ctx.addIssue(problem);
  return normalized;
});

import ipaddr from 'ipaddr.js';
import { shown } from './field-rules.js';
import { isFourPartDecimal } from './ipv4.js';

/**
 * IKE identities (LocalId, RemoteId): the reference allows "FQDN and IP address formats".
 *
 * An FQDN here is a DNS name of letters, digits and hyphens (RFC 1123 labels, at most 253
 * characters). A single label (`vpn`) is allowed because IKE peers commonly use bare names as
 * identities; an all-numeric last label is not, so `1.2.3.400` is reported as a bad address
 * instead of passing as a name.
 */

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function isIpAddress(text: string): boolean {
  return isFourPartDecimal(text) || (text.includes(':') && ipaddr.IPv6.isValid(text));
}

export function isFqdn(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = text.split('.');
  if (!labels.every((label) => LABEL.test(label))) return false;
  return !/^\d+$/.test(labels[labels.length - 1] ?? '');
}

/** Why `text` is not an IKE identity, or undefined when it is one. */
export function ikeIdentityProblem(text: string): string | undefined {
  if (isIpAddress(text) || isFqdn(text)) return undefined;
  return `must be an FQDN (e.g. vpn.example.com) or an IP address (got ${shown(text)})`;
}

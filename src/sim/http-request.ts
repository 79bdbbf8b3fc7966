import type { IncomingMessage } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { TextMemo } from '../text-memo.js';

/**
 * A received API request reduced to what signature checks and actions read: method, path, the
 * decoded query, the raw body and its form fields.
 *
 * Decoding follows application/x-www-form-urlencoded for query and body alike (`+` is a space),
 * as the cloud's gateway does; signing clients percent-encode `+` as `%2B`, so nothing they send
 * is read differently.
 */

/** The cloud refuses far smaller bodies; this only keeps a runaway client from eating memory. */
export const MAX_BODY_BYTES = 1024 * 1024;

export interface ReceivedRequest {
  method: string;
  /** The path as sent (still encoded), which V3 signs as its canonical URI. */
  pathname: string;
  /** Decoded query parameters; a repeated name keeps its first value. */
  query: Record<string, string>;
  /** Decoded form fields of an `application/x-www-form-urlencoded` body, else empty. */
  form: Record<string, string>;
  hasForm: boolean;
  /** The raw body, undefined when there was none (hashed by V3 verification). */
  body: Buffer | undefined;
}

export class BodyTooLargeError extends Error {}

/** querystring.parse's own limit: pairs after the first thousand are not read. */
const MAX_PAIRS = 1000;

/** The reference decoding: querystring.parse, a repeated name keeping its first value. */
function decodePairsSlowly(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const parsed = parseQuery(text);
  for (const name of Object.keys(parsed)) {
    const value = parsed[name];
    if (typeof value === 'string') result[name] = value;
    else if (Array.isArray(value) && value.length > 0) result[name] = value[0] as string;
  }
  return result;
}

// Escaped values are mostly the JSON configs and CIDR lists of a rollout, the same text each call.
const decodedValues = new TextMemo<string>();

/**
 * decodePairsSlowly's result in one pass, for the text every signing client sends: `+`-free,
 * each `%` starting a valid UTF-8 escape, each name once. Anything else (a `+`, a stray `%`, a
 * repeated name, over a thousand pairs) is decoded the reference way; querystring.parse builds a prototype-less object of
 * arrays that then has to be copied, which made it the largest step of reading a request.
 */
export function decodePairs(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  if (text === '') return result;
  if (text.includes('+')) return decodePairsSlowly(text);
  let start = 0;
  let pairs = 0;
  let named = 0;
  while (start < text.length) {
    let end = text.indexOf('&', start);
    if (end < 0) end = text.length;
    // Empty pieces (`a=1&&b=2`) count towards the limit, as querystring.parse counts them.
    if (++pairs > MAX_PAIRS) return decodePairsSlowly(text);
    if (end > start) {
      const equals = text.indexOf('=', start);
      const split = equals >= 0 && equals < end;
      let name = text.slice(start, split ? equals : end);
      let value = split ? text.slice(equals + 1, end) : '';
      if (name.includes('%') || value.includes('%')) {
        try {
          if (name.includes('%')) name = decodeURIComponent(name);
          value = decodedValues.remember(value, decodeURIComponent);
        } catch {
          return decodePairsSlowly(text);
        }
      }
      result[name] = value;
      named++;
    }
    start = end + 1;
  }
  // A repeated name (whose first value must win) or `__proto__` (no property at all) leaves
  // fewer properties than names: rare enough to take the reference way.
  if (Object.keys(result).length !== named) return decodePairsSlowly(text);
  return result;
}

function isForm(contentType: string | undefined): boolean {
  return contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded') === true;
}

export function toReceivedRequest(req: IncomingMessage, body: Buffer | undefined): ReceivedRequest {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const pathname = mark < 0 ? url : url.slice(0, mark);
  const query = mark < 0 ? {} : decodePairs(url.slice(mark + 1));
  const hasForm = body !== undefined && body.length > 0 && isForm(req.headers['content-type']);
  const form = hasForm ? decodePairs(body.toString('utf8')) : {};
  return {
    method: req.method ?? 'GET',
    pathname: pathname === '' ? '/' : pathname,
    query,
    form,
    hasForm,
    body,
  };
}

/** Whether the request announces a body at all; most calls (V3, V1 GET) do not, and skip the wait. */
export function expectsBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Reads the whole body, refusing more than MAX_BODY_BYTES. */
export function readBody(
  req: IncomingMessage,
  done: (error: Error | undefined, body?: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  req.on('data', (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      failed = true;
      done(new BodyTooLargeError(`request body over ${MAX_BODY_BYTES} bytes`));
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!failed) done(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
  req.on('error', (error) => {
    if (failed) return;
    failed = true;
    done(error);
  });
}

/** Loopback peers only: the admin routes are unsigned. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

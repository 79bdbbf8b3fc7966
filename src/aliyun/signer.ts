/**
 * Alibaba Cloud request signing, V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1), as pure functions.
 *
 * Every step is exported on its own because the simulator verifies signatures with the very same
 * code that the client signs with: a server rebuilds the canonical request from what it received
 * and compares. Nothing here reads a clock or draws randomness unless asked to (`systemClock`,
 * `randomNonce`), so tests can pin both.
 */
import { createHmac, hash, randomUUID, timingSafeEqual } from 'node:crypto';
import { percentEncode } from './percent-encode.js';
import type { Credentials } from './types.js';

export const V3_ALGORITHM = 'ACS3-HMAC-SHA256';
/** Hex SHA-256 of zero bytes: the payload hash of every RPC call, whose parameters all travel in the query. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const V1_SIGNATURE_METHOD = 'HMAC-SHA1';
export const V1_SIGNATURE_VERSION = '1.0';

export type Clock = () => Date;
export type NonceSource = () => string;

export const systemClock: Clock = () => new Date();
/** A UUID draws from a pooled CSPRNG buffer, so a nonce per request costs no syscall. */
export const randomNonce: NonceSource = () => randomUUID();

/** `YYYY-MM-DDThh:mm:ssZ` in UTC; the cloud rejects milliseconds in both `x-acs-date` and `Timestamp`. */
export function formatAcsTimestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export function sha256Hex(data: string | Uint8Array): string {
  // The one-shot form makes no Hash object: one native call per digest instead of three.
  return hash('sha256', data, 'hex');
}

/** Hashing an empty body is the common case; skip the digest for it. */
function payloadHash(body: string | Uint8Array | undefined): string {
  return body === undefined || body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(body);
}

function byEncodedName(a: readonly [string, string], b: readonly [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * `name=value` pairs, both percent-encoded, sorted by encoded name, joined with `&`; an empty value
 * keeps its `=`. V3 signs this as its CanonicalQueryString and V1 as its canonicalized parameters,
 * and the client sends the same string on the wire so it is built once per call.
 */
export function canonicalQueryString(params: Readonly<Record<string, string>>): string {
  const pairs: [string, string][] = [];
  for (const name of Object.keys(params)) {
    pairs.push([percentEncode(name), percentEncode(params[name] as string)]);
  }
  pairs.sort(byEncodedName);
  let result = '';
  for (let index = 0; index < pairs.length; index++) {
    const [name, value] = pairs[index] as [string, string];
    result += index === 0 ? `${name}=${value}` : `&${name}=${value}`;
  }
  return result;
}

export type HeaderValue = string | readonly string[] | undefined;
/** Request headers as a server sees them (node:http lower-cases names) or as a client builds them. */
export type HeaderBag = Readonly<Record<string, HeaderValue>>;

export interface CanonicalHeaders {
  /** `name:value\n` for each signed header, in signing order. */
  canonicalHeaders: string;
  /** The signed header names joined with `;`, as they appear in `Authorization`. */
  signedHeaders: string;
}

/** V3 signs `host`, `content-type` and every `x-acs-*` header; other headers may change in transit. */
export function isV3SignedHeaderName(lowerCaseName: string): boolean {
  return lowerCaseName.startsWith('x-acs-') || lowerCaseName === 'host' || lowerCaseName === 'content-type';
}

function collectValues(into: Map<string, string[]>, name: string, value: HeaderValue): void {
  if (value === undefined) return;
  let values = into.get(name);
  if (!values) {
    values = [];
    into.set(name, values);
  }
  if (typeof value === 'string') values.push(value.trim());
  else for (const item of value) values.push(item.trim());
}

function joinValues(values: string[] | undefined): string {
  if (!values || values.length === 0) return '';
  // The official signer sorts repeated values before joining them; a single value is the norm.
  return values.length === 1 ? (values[0] as string) : values.sort().join(',');
}

/**
 * Canonical headers and signed-header list. A signer passes no `signedHeaderNames` (every
 * host/content-type/x-acs-* header is signed); a verifier passes the names listed in the received
 * `Authorization`, so headers added in transit do not spoil the comparison.
 */
export function canonicalizeHeaders(
  headers: HeaderBag,
  signedHeaderNames?: readonly string[],
): CanonicalHeaders {
  const valuesByName = new Map<string, string[]>();
  for (const name of Object.keys(headers)) {
    const lowerCaseName = name.toLowerCase();
    if (signedHeaderNames ? signedHeaderNames.includes(lowerCaseName) : isV3SignedHeaderName(lowerCaseName)) {
      collectValues(valuesByName, lowerCaseName, headers[name]);
    }
  }
  const names = signedHeaderNames ?? [...valuesByName.keys()].sort();
  let canonicalHeaders = '';
  for (const name of names) canonicalHeaders += `${name}:${joinValues(valuesByName.get(name))}\n`;
  return { canonicalHeaders, signedHeaders: names.join(';') };
}

export interface CanonicalRequestV3Parts {
  method: string;
  /** Already URI-encoded path; `/` for RPC APIs. */
  pathname: string;
  canonicalQuery: string;
  canonicalHeaders: string;
  signedHeaders: string;
  hashedPayload: string;
}

export function canonicalRequestV3(parts: CanonicalRequestV3Parts): string {
  return `${parts.method}\n${parts.pathname}\n${parts.canonicalQuery}\n${parts.canonicalHeaders}\n${parts.signedHeaders}\n${parts.hashedPayload}`;
}

export function stringToSignV3(canonicalRequest: string): string {
  return `${V3_ALGORITHM}\n${sha256Hex(canonicalRequest)}`;
}

export function signatureV3(accessKeySecret: string, stringToSign: string): string {
  return createHmac('sha256', accessKeySecret).update(stringToSign).digest('hex');
}

export function authorizationV3(accessKeyId: string, signedHeaders: string, signature: string): string {
  return `${V3_ALGORITHM} Credential=${accessKeyId},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

export interface SignV3Input {
  method: string;
  pathname: string;
  /** Decoded parameter values; encoding is part of signing. */
  query: Readonly<Record<string, string>>;
  /**
   * host, x-acs-action, x-acs-version, x-acs-date, x-acs-signature-nonce and usually
   * x-acs-content-sha256 (computed from `body` when absent), plus any unsigned ones to send.
   */
  headers: Readonly<Record<string, string>>;
  body?: string | Uint8Array | undefined;
  credentials: Credentials;
}

/** The headers to send: the given ones plus payload hash, STS headers and `authorization`. */
export function signV3Request(input: SignV3Input): Record<string, string> {
  return signV3WithCanonicalQuery(input, canonicalQueryString(input.query));
}

/** signV3Request for a caller that already built the canonical query (it also sends it as the URL query). */
export function signV3WithCanonicalQuery(
  input: Omit<SignV3Input, 'query'>,
  canonicalQuery: string,
): Record<string, string> {
  const headers: Record<string, string> = { ...input.headers };
  const hashedPayload = headers['x-acs-content-sha256'] ?? payloadHash(input.body);
  headers['x-acs-content-sha256'] = hashedPayload;
  const { accessKeyId, accessKeySecret, securityToken } = input.credentials;
  if (securityToken) {
    // The official SDK names the key id in a header too when it sends an STS token; both are signed.
    headers['x-acs-accesskey-id'] ??= accessKeyId;
    headers['x-acs-security-token'] ??= securityToken;
  }
  const { canonicalHeaders, signedHeaders } = canonicalizeHeaders(headers);
  const canonicalRequest = canonicalRequestV3({
    method: input.method,
    pathname: input.pathname,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    hashedPayload,
  });
  const signature = signatureV3(accessKeySecret, stringToSignV3(canonicalRequest));
  headers.authorization = authorizationV3(accessKeyId, signedHeaders, signature);
  return headers;
}

export interface V3RpcSignerInput {
  /** The `host` header, as sent. */
  host: string;
  /** The API version, e.g. `2016-04-28`. */
  version: string;
  credentials: Credentials;
}

/** What changes from one RPC call to the next; everything else is fixed for a client. */
export interface V3RpcCall {
  action: string;
  /** As canonicalQueryString() builds it, and as it is sent. */
  canonicalQuery: string;
  /** `x-acs-date`, as formatAcsTimestamp() writes it. */
  date: string;
  nonce: string;
}

const V3_RPC_CALL_HEADERS = ['x-acs-action', 'x-acs-date', 'x-acs-signature-nonce'] as const;

const SHA256_BLOCK_BYTES = 64;

/**
 * Hex HMAC-SHA256 (RFC 2104) under one fixed key, as two one-shot SHA-256 digests over the key's
 * inner and outer pads, which are derived once. createHmac() sets up an OpenSSL HMAC context per
 * call, and that setup alone cost more than the rest of signing; a client signs every call with
 * the same secret, so the pads never change. Same output as createHmac('sha256', key) (tested).
 */
function hmacSha256HexUnder(key: string): (message: string) => string {
  let keyBytes: Buffer = Buffer.from(key, 'utf8');
  if (keyBytes.length > SHA256_BLOCK_BYTES) keyBytes = hash('sha256', keyBytes, 'buffer');
  const innerPad = Buffer.alloc(SHA256_BLOCK_BYTES, 0x36);
  // The outer digest's input: the outer pad, then the 32-byte inner digest written in per call.
  const outerInput = Buffer.alloc(SHA256_BLOCK_BYTES + 32, 0x5c);
  for (let index = 0; index < keyBytes.length; index++) {
    const keyByte = keyBytes[index] as number;
    innerPad[index] = 0x36 ^ keyByte;
    outerInput[index] = 0x5c ^ keyByte;
  }
  return (message: string): string => {
    const innerInput = Buffer.allocUnsafe(SHA256_BLOCK_BYTES + Buffer.byteLength(message, 'utf8'));
    innerPad.copy(innerInput, 0);
    innerInput.write(message, SHA256_BLOCK_BYTES, 'utf8');
    hash('sha256', innerInput, 'buffer').copy(outerInput, SHA256_BLOCK_BYTES);
    return hash('sha256', outerInput, 'hex');
  };
}

/**
 * signV3WithCanonicalQuery() for the one request shape a client sends on every RPC call (POST `/`,
 * empty body, the headers below), with all that is the same from call to call, the sorted
 * signed-header list and most of the canonical headers, built once. A client signs thousands of
 * calls a second; the general function rediscovers and re-sorts the same header names each time.
 *
 * The returned function gives the headers to send, exactly what signV3WithCanonicalQuery() would
 * for `host`, `x-acs-action`, `x-acs-version`, `x-acs-date`, `x-acs-signature-nonce` and
 * `x-acs-content-sha256` of an empty body (with the STS headers when the credentials carry a token).
 */
export function createV3RpcSigner(input: V3RpcSignerInput): (call: V3RpcCall) => Record<string, string> {
  const { host, version } = input;
  const { accessKeyId, accessKeySecret, securityToken } = input.credentials;
  const fixed: Record<string, string> = {
    host,
    'x-acs-version': version,
    'x-acs-content-sha256': EMPTY_BODY_SHA256,
  };
  if (securityToken) {
    fixed['x-acs-accesskey-id'] = accessKeyId;
    fixed['x-acs-security-token'] = securityToken;
  }
  const names = [...Object.keys(fixed), ...V3_RPC_CALL_HEADERS].sort();
  // The canonical headers are fixed text with the three per-call values between: pieces[i] is what
  // comes before the i-th of V3_RPC_CALL_HEADERS (in sorted order, as that list is), pieces[3] the rest.
  const pieces = [''];
  for (const name of names) {
    const value = fixed[name];
    if (value === undefined) {
      pieces[pieces.length - 1] += `${name}:`;
      pieces.push('\n');
    } else {
      pieces[pieces.length - 1] += `${name}:${value.trim()}\n`;
    }
  }
  const [beforeAction, beforeDate, beforeNonce, afterNonce] = pieces as [string, string, string, string];
  const requestHead = 'POST\n/\n';
  const requestTail = `\n${names.join(';')}\n${EMPTY_BODY_SHA256}`;
  const authorizationHead = `${V3_ALGORITHM} Credential=${accessKeyId},SignedHeaders=${names.join(';')},Signature=`;
  const signatureOf = hmacSha256HexUnder(accessKeySecret);

  return (call: V3RpcCall): Record<string, string> => {
    const canonicalRequest = `${requestHead}${call.canonicalQuery}\n${beforeAction}${call.action.trim()}${beforeDate}${call.date.trim()}${beforeNonce}${call.nonce.trim()}${afterNonce}${requestTail}`;
    const signature = signatureOf(stringToSignV3(canonicalRequest));
    const headers: Record<string, string> = {
      host,
      'x-acs-action': call.action,
      'x-acs-version': version,
      'x-acs-date': call.date,
      'x-acs-signature-nonce': call.nonce,
      'x-acs-content-sha256': EMPTY_BODY_SHA256,
    };
    if (securityToken) {
      headers['x-acs-accesskey-id'] = accessKeyId;
      headers['x-acs-security-token'] = securityToken;
    }
    headers.authorization = `${authorizationHead}${signature}`;
    return headers;
  };
}

export interface AuthorizationV3 {
  algorithm: string;
  accessKeyId: string;
  /** Lower-case names in the order the client signed them. */
  signedHeaders: string[];
  signature: string;
}

/**
 * Reads `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`. Returns undefined
 * when the value does not have that shape, so a server can answer with its own error code.
 */
export function parseAuthorizationV3(value: string | undefined): AuthorizationV3 | undefined {
  if (!value) return undefined;
  const space = value.indexOf(' ');
  if (space <= 0) return undefined;
  const algorithm = value.slice(0, space);
  let accessKeyId: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  for (const part of value.slice(space + 1).split(',')) {
    const equals = part.indexOf('=');
    if (equals <= 0) return undefined;
    const key = part.slice(0, equals).trim();
    const field = part.slice(equals + 1).trim();
    if (key === 'Credential') accessKeyId = field;
    else if (key === 'SignedHeaders') signedHeaders = field;
    else if (key === 'Signature') signature = field;
    else return undefined;
  }
  if (!accessKeyId || !signedHeaders || !signature) return undefined;
  return { algorithm, accessKeyId, signedHeaders: signedHeaders.toLowerCase().split(';'), signature };
}

export interface VerifyV3Input {
  method: string;
  pathname: string;
  /** The received query, decoded. */
  query: Readonly<Record<string, string>>;
  headers: HeaderBag;
  /** The received body; its hash is recomputed rather than trusted from `x-acs-content-sha256`. */
  body?: string | Uint8Array | undefined;
  authorization: AuthorizationV3;
  accessKeySecret: string;
}

export interface V3Verification {
  valid: boolean;
  expectedSignature: string;
  /** For a server's SignatureDoesNotMatch message, as the real cloud returns it. */
  stringToSign: string;
  canonicalRequest: string;
  /** host/content-type/x-acs-* headers present but not signed: a strict server rejects these. */
  unsignedHeaders: string[];
}

function equalSecrets(received: string, expected: string): boolean {
  const receivedBytes = Buffer.from(received);
  const expectedBytes = Buffer.from(expected);
  return receivedBytes.length === expectedBytes.length && timingSafeEqual(receivedBytes, expectedBytes);
}

export function verifyV3Request(input: VerifyV3Input): V3Verification {
  const signedNames = input.authorization.signedHeaders;
  const { canonicalHeaders, signedHeaders } = canonicalizeHeaders(input.headers, signedNames);
  const canonicalRequest = canonicalRequestV3({
    method: input.method,
    pathname: input.pathname,
    canonicalQuery: canonicalQueryString(input.query),
    canonicalHeaders,
    signedHeaders,
    hashedPayload: payloadHash(input.body),
  });
  const stringToSign = stringToSignV3(canonicalRequest);
  const expectedSignature = signatureV3(input.accessKeySecret, stringToSign);
  const unsignedHeaders: string[] = [];
  for (const name of Object.keys(input.headers)) {
    const lowerCaseName = name.toLowerCase();
    if (isV3SignedHeaderName(lowerCaseName) && !signedNames.includes(lowerCaseName))
      unsignedHeaders.push(lowerCaseName);
  }
  return {
    valid:
      input.authorization.algorithm === V3_ALGORITHM &&
      equalSecrets(input.authorization.signature, expectedSignature),
    expectedSignature,
    stringToSign,
    canonicalRequest,
    unsignedHeaders,
  };
}

export interface V1CommonParamsInput {
  action: string;
  /** The API version, e.g. `2016-04-28`. */
  version: string;
  credentials: Pick<Credentials, 'accessKeyId' | 'securityToken'>;
  now: Date;
  nonce: string;
  format?: 'JSON' | 'XML';
}

/** The parameters every V1 call carries besides its business parameters and `Signature`. */
export function buildV1CommonParams(input: V1CommonParamsInput): Record<string, string> {
  const params: Record<string, string> = {
    Action: input.action,
    Format: input.format ?? 'JSON',
    Version: input.version,
    AccessKeyId: input.credentials.accessKeyId,
    SignatureMethod: V1_SIGNATURE_METHOD,
    SignatureVersion: V1_SIGNATURE_VERSION,
    SignatureNonce: input.nonce,
    Timestamp: formatAcsTimestamp(input.now),
  };
  if (input.credentials.securityToken) params.SecurityToken = input.credentials.securityToken;
  return params;
}

/** `METHOD&%2F&` + the percent-encoded canonical parameter string. */
export function stringToSignV1(method: string, canonicalParams: string): string {
  return `${method}&%2F&${percentEncode(canonicalParams)}`;
}

/** V1 signature from an already built canonical parameter string (what the client also sends). */
export function signV1Canonical(canonicalParams: string, method: string, accessKeySecret: string): string {
  return createHmac('sha1', `${accessKeySecret}&`)
    .update(stringToSignV1(method, canonicalParams))
    .digest('base64');
}

/** Base64 HMAC-SHA1 over every parameter (common ones included, `Signature` excluded). */
export function signV1(
  params: Readonly<Record<string, string>>,
  method: string,
  accessKeySecret: string,
): string {
  return signV1Canonical(canonicalQueryString(params), method, accessKeySecret);
}

/** Checks a received V1 request: `params` are all decoded query or form parameters, `Signature` among them. */
export function verifyV1Signature(
  params: Readonly<Record<string, string>>,
  method: string,
  accessKeySecret: string,
): boolean {
  const { Signature: received, ...signed } = params;
  if (!received) return false;
  return equalSecrets(received, signV1(signed, method, accessKeySecret));
}

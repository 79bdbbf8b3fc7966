import type { IncomingHttpHeaders } from 'node:http';
import {
  type AuthorizationV3,
  canonicalQueryString,
  EMPTY_BODY_SHA256,
  parseAuthorizationV3,
  sha256Hex,
  stringToSignV1,
  V1_SIGNATURE_METHOD,
  V1_SIGNATURE_VERSION,
  V3_ALGORITHM,
  verifyV1Signature,
  verifyV3Request,
} from '../aliyun/signer.js';
import { simErrors } from './errors.js';
import type { ReceivedRequest } from './http-request.js';
import type { NonceCache } from './nonce-cache.js';
import type { ResponseFormat } from './responses.js';

/**
 * Who is calling, checked the way the cloud checks it, with the project's own signer (the same
 * code the client signs with, so a signing bug shows up as SignatureDoesNotMatch here).
 *
 * Two envelopes: V3 (`Authorization: ACS3-HMAC-SHA256 ...` and `x-acs-*` headers, business
 * parameters in the query or a form body) and V1 (`Signature`, `AccessKeyId`, `Timestamp`... among
 * the parameters, in the query for GET or a form body for POST).
 *
 * Order of checks: access key → signature → (V3) what the signature must cover and the payload
 * hash → nonce → timestamp → STS token. The nonce is remembered as soon as the signature is
 * proven: a signed request has used its nonce even if a later check refuses it, which is what
 * stops a captured request from being replayed.
 */

export const TIMESTAMP_WINDOW_MS = 15 * 60 * 1000;

export interface SimAccessKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string | undefined;
}

/** Parameters of the V1 envelope, never business parameters. */
const V1_COMMON_PARAMETERS = new Set([
  'Action',
  'Version',
  'Format',
  'AccessKeyId',
  'SignatureMethod',
  'SignatureVersion',
  'SignatureNonce',
  'SignatureType',
  'Timestamp',
  'Signature',
  'SecurityToken',
]);

/**
 * Account parameters some SDK request models carry on every action (the VPC SDK's OwnerId,
 * ResourceOwnerAccount...); they name the caller's own account, so the simulator drops them.
 */
const ACCOUNT_PARAMETER_NAMES = ['OwnerId', 'OwnerAccount', 'ResourceOwnerId', 'ResourceOwnerAccount'];
const ACCOUNT_PARAMETERS = new Set(ACCOUNT_PARAMETER_NAMES);

function hasAccountParameter(params: Readonly<Record<string, string>>): boolean {
  for (const name of ACCOUNT_PARAMETER_NAMES) if (Object.hasOwn(params, name)) return true;
  return false;
}

// To the second, as the cloud takes it (facts.md: YYYY-MM-DDThh:mm:ssZ): a client sending
// milliseconds must meet here the InvalidTimeStamp.Format it would meet in production.
const TIMESTAMP_SHAPE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export interface Envelope {
  scheme: 'v3' | 'v1';
  action: string | undefined;
  version: string | undefined;
  /** XML when a V1 call asks `Format=XML` or leaves Format out; V3 calls are always JSON. */
  format: ResponseFormat;
  /** Everything that is not part of the envelope. */
  params: Record<string, string>;
  /** V3 only; undefined when the header is there but malformed. */
  authorization: AuthorizationV3 | undefined;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function businessParams(all: Record<string, string>, stripV1: boolean): Record<string, string> {
  // V3 calls carry only business parameters, as a rule without account ones: nothing to copy.
  // Nothing writes to params or the received query, so the two may be one object.
  if (!stripV1 && !hasAccountParameter(all)) return all;
  const params: Record<string, string> = {};
  for (const name of Object.keys(all)) {
    if ((stripV1 && V1_COMMON_PARAMETERS.has(name)) || ACCOUNT_PARAMETERS.has(name)) continue;
    params[name] = all[name] as string;
  }
  return params;
}

/** V1 parameters are the query and the form body together; they are signed together too. */
function v1Params(received: ReceivedRequest): Record<string, string> {
  return received.hasForm ? { ...received.query, ...received.form } : received.query;
}

/**
 * The cloud's common parameters document Format as optional with XML the default; the official
 * clients always send Format=JSON, so only a hand-made request meets the default.
 */
function v1Format(format: string | undefined): ResponseFormat {
  return format === undefined || format.toUpperCase() === 'XML' ? 'XML' : 'JSON';
}

/** Reads the envelope without judging it, so even a refused call is answered in the format it asked for. */
export function readEnvelope(received: ReceivedRequest, headers: IncomingHttpHeaders): Envelope {
  const authorizationHeader = header(headers, 'authorization');
  if (authorizationHeader !== undefined) {
    const merged = v1Params(received);
    return {
      scheme: 'v3',
      action: header(headers, 'x-acs-action'),
      version: header(headers, 'x-acs-version'),
      format: 'JSON',
      params: businessParams(merged, false),
      authorization: parseAuthorizationV3(authorizationHeader),
    };
  }
  const all = v1Params(received);
  return {
    scheme: 'v1',
    action: all.Action,
    version: all.Version,
    format: v1Format(all.Format),
    params: businessParams(all, true),
    authorization: undefined,
  };
}

export interface AuthContext {
  keys: ReadonlyMap<string, SimAccessKey>;
  nonces: NonceCache;
  now: number;
}

/** The calling key, or a SimError with the cloud's code for what is wrong. */
export function authenticate(
  envelope: Envelope,
  received: ReceivedRequest,
  headers: IncomingHttpHeaders,
  context: AuthContext,
): SimAccessKey {
  return envelope.scheme === 'v3'
    ? authenticateV3(envelope, received, headers, context)
    : authenticateV1(received, context);
}

function lookupKey(accessKeyId: string, context: AuthContext): SimAccessKey {
  const key = context.keys.get(accessKeyId);
  if (!key) throw simErrors.accessKeyNotFound();
  return key;
}

function checkNonce(accessKeyId: string, nonce: string | undefined, context: AuthContext): void {
  if (nonce === undefined || nonce === '') throw simErrors.missingCommonParameter('SignatureNonce');
  if (!context.nonces.remember(`${accessKeyId}\n${nonce}`, context.now)) throw simErrors.nonceUsed();
}

// Clients stamp calls to the second, so a busy simulator reads the same timestamp many times over.
let lastTimestamp = '';
let lastTimestampAt = Number.NaN;

function timestampAt(timestamp: string): number {
  if (timestamp !== lastTimestamp) {
    lastTimestampAt = TIMESTAMP_SHAPE.test(timestamp) ? Date.parse(timestamp) : Number.NaN;
    lastTimestamp = timestamp;
  }
  return lastTimestampAt;
}

function checkTimestamp(timestamp: string | undefined, context: AuthContext): void {
  if (timestamp === undefined || timestamp === '') throw simErrors.missingCommonParameter('Timestamp');
  const at = timestampAt(timestamp);
  if (Number.isNaN(at)) throw simErrors.timestampFormat();
  if (Math.abs(context.now - at) > TIMESTAMP_WINDOW_MS) throw simErrors.timestampExpired();
}

/**
 * A token is accepted only for the key it was issued with; a key without one takes none. A key
 * issued with one (an STS key) is worthless without it, as the cloud answers MissingSecurityToken.
 */
function checkSecurityToken(key: SimAccessKey, token: string | undefined): void {
  if (token === undefined || token === '') {
    if (key.securityToken !== undefined) throw simErrors.missingCommonParameter('SecurityToken');
    return;
  }
  if (key.securityToken !== token) throw simErrors.securityTokenMismatch();
}

const PAYLOAD_HASH_HEADER = 'x-acs-content-sha256';

/**
 * What a valid V3 signature must also cover (facts.md: host, content-type and every x-acs-*
 * header are signed; the payload hash header is part of every call). A signature over less
 * leaves the rest open to change in transit, so the cloud refuses it as IncompleteSignature
 * even though the arithmetic is right.
 */
function checkV3Coverage(
  authorization: AuthorizationV3,
  headers: IncomingHttpHeaders,
  unsigned: string[],
): void {
  if (!authorization.signedHeaders.includes('host'))
    throw simErrors.incompleteSignature('SignedHeaders must include host.');
  if (unsigned.length > 0) {
    throw simErrors.incompleteSignature(
      `host, content-type and every x-acs-* header sent must be signed; not signed: ${unsigned.join(', ')}.`,
    );
  }
  if (header(headers, PAYLOAD_HASH_HEADER) === undefined)
    throw simErrors.incompleteSignature(`The ${PAYLOAD_HASH_HEADER} header is required.`);
}

/**
 * The payload hash header must be the body's: the cloud builds the canonical request from the
 * body it received, so a header that names another body cannot match its calculation. Checked
 * on its own because the signature alone cannot tell when the client signed the true hash.
 */
function checkPayloadHash(
  headers: IncomingHttpHeaders,
  body: Buffer | undefined,
  stringToSign: string,
): void {
  const actual = body === undefined || body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(body);
  if (header(headers, PAYLOAD_HASH_HEADER) !== actual) throw simErrors.signatureDoesNotMatch(stringToSign);
}

function authenticateV3(
  envelope: Envelope,
  received: ReceivedRequest,
  headers: IncomingHttpHeaders,
  context: AuthContext,
): SimAccessKey {
  const authorization = envelope.authorization;
  if (!authorization) {
    throw simErrors.incompleteSignature(
      'Authorization must read ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<names>,Signature=<hex>.',
    );
  }
  if (authorization.algorithm !== V3_ALGORITHM)
    throw simErrors.invalidSignatureMethod(authorization.algorithm);
  const key = lookupKey(authorization.accessKeyId, context);
  const verification = verifyV3Request({
    method: received.method,
    pathname: received.pathname,
    query: received.query,
    headers,
    body: received.body,
    authorization,
    accessKeySecret: key.accessKeySecret,
  });
  if (!verification.valid) throw simErrors.signatureDoesNotMatch(verification.stringToSign);
  checkV3Coverage(authorization, headers, verification.unsignedHeaders);
  checkPayloadHash(headers, received.body, verification.stringToSign);
  checkNonce(key.accessKeyId, header(headers, 'x-acs-signature-nonce'), context);
  checkTimestamp(header(headers, 'x-acs-date'), context);
  const namedKey = header(headers, 'x-acs-accesskey-id');
  if (namedKey !== undefined && namedKey !== key.accessKeyId) throw simErrors.securityTokenMismatch();
  checkSecurityToken(key, header(headers, 'x-acs-security-token'));
  return key;
}

function authenticateV1(received: ReceivedRequest, context: AuthContext): SimAccessKey {
  const params = v1Params(received);
  const accessKeyId = params.AccessKeyId;
  if (accessKeyId === undefined || accessKeyId === '') throw simErrors.missingCommonParameter('AccessKeyId');
  if (params.Signature === undefined) throw simErrors.missingCommonParameter('Signature');
  const key = lookupKey(accessKeyId, context);
  const method = params.SignatureMethod;
  if (method !== V1_SIGNATURE_METHOD) {
    if (method === undefined) throw simErrors.missingCommonParameter('SignatureMethod');
    throw simErrors.invalidSignatureMethod(method);
  }
  if (params.SignatureVersion !== V1_SIGNATURE_VERSION) {
    if (params.SignatureVersion === undefined) throw simErrors.missingCommonParameter('SignatureVersion');
    throw simErrors.incompleteSignature(`SignatureVersion must be ${V1_SIGNATURE_VERSION}.`);
  }
  if (!verifyV1Signature(params, received.method, key.accessKeySecret)) {
    const { Signature: _signature, ...signed } = params;
    throw simErrors.signatureDoesNotMatch(v1StringToSign(signed, received.method));
  }
  checkNonce(key.accessKeyId, params.SignatureNonce, context);
  checkTimestamp(params.Timestamp, context);
  checkSecurityToken(key, params.SecurityToken);
  return key;
}

/** Only on the error path: the message carries the server's string to sign, as the cloud's does. */
function v1StringToSign(params: Record<string, string>, method: string): string {
  return stringToSignV1(method, canonicalQueryString(params));
}

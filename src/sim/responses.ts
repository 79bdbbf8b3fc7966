import { randomFillSync } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SimError } from './errors.js';
import { toXmlDocument } from './xml.js';

/**
 * What goes on the wire: bodies, headers and request ids shaped as the cloud shapes them.
 *
 * The official SDK picks its error parser by content type (exactly `text/xml;charset=utf-8` means
 * XML), so the content types are the cloud's, byte for byte.
 */

export type ResponseFormat = 'JSON' | 'XML';

export const JSON_CONTENT_TYPE = 'application/json;charset=utf-8';
export const XML_CONTENT_TYPE = 'text/xml;charset=utf-8';
export const DEFAULT_HOST_ID = 'vpc.aliyuncs.com';

const HEX_DIGITS = Buffer.from('0123456789ABCDEF', 'latin1');
// Where each random byte's two digits go in `XXXXXXXX-XXXX-4XXX-YXXX-XXXXXXXXXXXX`.
const DIGIT_POSITIONS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const IDS_PER_FILL = 256;
const randomBytes = Buffer.alloc(16 * IDS_PER_FILL);
let randomOffset = randomBytes.length;
const idText = Buffer.alloc(36, '-');

/**
 * An upper-case random (version 4) UUID, like `B61C08E5-403A-46A2-96C1-F7B1216DB10C`. Written
 * straight in upper case from pooled random bytes: randomUUID().toUpperCase() builds the text
 * twice, piece by piece, and every call needs one.
 */
export function newRequestId(): string {
  if (randomOffset === randomBytes.length) {
    randomFillSync(randomBytes);
    randomOffset = 0;
  }
  for (let index = 0; index < 16; index++) {
    let byte = randomBytes[randomOffset + index] as number;
    if (index === 6) byte = (byte & 0x0f) | 0x40;
    else if (index === 8) byte = (byte & 0x3f) | 0x80;
    const position = DIGIT_POSITIONS[index] as number;
    idText[position] = HEX_DIGITS[byte >> 4] as number;
    idText[position + 1] = HEX_DIGITS[byte & 0x0f] as number;
  }
  randomOffset += 16;
  return idText.toString('latin1');
}

export interface ErrorBody extends Record<string, unknown> {
  RequestId: string;
  HostId: string;
  Code: string;
  Message: string;
  Recommend: string;
}

const RECOMMEND_PREFIX = 'https://api.aliyun.com/troubleshoot?q=';
const RECOMMEND_MIDDLE = '&product=Vpc&requestId=';

export function errorBody(error: SimError, requestId: string, hostId: string): ErrorBody {
  return {
    RequestId: requestId,
    HostId: hostId,
    Code: error.code,
    Message: error.message,
    Recommend: `${RECOMMEND_PREFIX}${encodeURIComponent(error.code)}${RECOMMEND_MIDDLE}${requestId}`,
  };
}

function send(
  res: ServerResponse,
  status: number,
  requestId: string,
  text: string,
  format: ResponseFormat,
  extraHeaders: Readonly<Record<string, string>> | undefined,
  byteLength = Buffer.byteLength(text),
): void {
  if (res.destroyed || res.headersSent) return;
  // A flat list is the cheapest form writeHead takes: no object to build, nothing to merge.
  const headers: (string | number)[] = [
    'content-type',
    format === 'XML' ? XML_CONTENT_TYPE : JSON_CONTENT_TYPE,
    'content-length',
    byteLength,
    'x-acs-request-id',
    requestId,
  ];
  if (extraHeaders) {
    for (const name of Object.keys(extraHeaders)) headers.push(name, extraHeaders[name] as string);
  }
  res.writeHead(status, headers);
  res.end(text);
}

const PROXY_PAGE = Buffer.from(
  '<!DOCTYPE html><html><head><title>Session expired</title></head><body><p>Please sign in again.</p></body></html>',
);

/**
 * What a proxy or captive portal sends in place of the cloud's answer: 200, HTML, and none of the
 * cloud's headers.
 */
export function sendProxyPage(res: ServerResponse): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(200, ['content-type', 'text/html; charset=utf-8', 'content-length', PROXY_PAGE.length]);
  res.end(PROXY_PAGE);
}

/**
 * A 200 answer; `action` names the XML root (`<UpdateIpsecServerResponse>`). `json`, when given,
 * is JSON.stringify(body) already made.
 */
export function sendSuccess(
  res: ServerResponse,
  requestId: string,
  action: string,
  body: Record<string, unknown>,
  format: ResponseFormat,
  json?: string,
): void {
  const text = format === 'XML' ? toXmlDocument(`${action}Response`, body) : (json ?? JSON.stringify(body));
  send(res, 200, requestId, text, format, undefined);
}

/** JSON text with its length in UTF-8 bytes, kept so neither is worked out per call. */
interface JsonPart {
  text: string;
  bytes: number;
}

function jsonPart(text: string): JsonPart {
  return { text, bytes: Buffer.byteLength(text) };
}

/**
 * An error's part of the JSON error body (Code, Message, and the Recommend link up to the
 * request id), made once per answer: the common answers are made once (errors.ts), so their
 * text is too.
 */
const errorTails = new WeakMap<SimError, JsonPart>();

function errorTail(error: SimError): JsonPart {
  let tail = errorTails.get(error);
  if (tail === undefined) {
    const recommend = JSON.stringify(
      `${RECOMMEND_PREFIX}${encodeURIComponent(error.code)}${RECOMMEND_MIDDLE}`,
    );
    tail = jsonPart(
      `"Code":${JSON.stringify(error.code)},"Message":${JSON.stringify(error.message)},"Recommend":${recommend.slice(0, -1)}`,
    );
    errorTails.set(error, tail);
  }
  return tail;
}

// Calls to one simulator name one host; its JSON form is kept rather than made per call.
let lastHostId = DEFAULT_HOST_ID;
let lastHostIdJson = jsonPart(JSON.stringify(DEFAULT_HOST_ID));

function hostIdJson(hostId: string): JsonPart {
  if (hostId !== lastHostId) {
    lastHostId = hostId;
    lastHostIdJson = jsonPart(JSON.stringify(hostId));
  }
  return lastHostIdJson;
}

/**
 * Ids that JSON carries as they are, inside quotes and inside the Recommend link alike, and
 * whose UTF-8 length is their length: ASCII letters, digits and `-`.
 */
function isPlainId(id: string): boolean {
  if (id.length === 0) return false;
  for (let index = 0; index < id.length; index++) {
    const code = id.charCodeAt(index);
    const plain =
      (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 45;
    if (!plain) return false;
  }
  return true;
}

function plainErrorJson(requestId: string, host: JsonPart, tail: JsonPart): string {
  return `{"RequestId":"${requestId}","HostId":${host.text},${tail.text}${requestId}"}`;
}

const PLAIN_ERROR_JSON_BYTES = Buffer.byteLength(plainErrorJson('', jsonPart(''), jsonPart('')));

/** JSON.stringify(errorBody(...)) and its UTF-8 length, for the common ids without building the body. */
function errorJsonPart(error: SimError, requestId: string, hostId: string): JsonPart {
  if (!isPlainId(requestId)) return jsonPart(JSON.stringify(errorBody(error, requestId, hostId)));
  const host = hostIdJson(hostId);
  const tail = errorTail(error);
  // Every part's length is known, so the body is not measured again.
  return {
    text: plainErrorJson(requestId, host, tail),
    bytes: PLAIN_ERROR_JSON_BYTES + 2 * requestId.length + host.bytes + tail.bytes,
  };
}

/** JSON.stringify(errorBody(...)), byte for byte. */
export function errorJson(error: SimError, requestId: string, hostId: string): string {
  return errorJsonPart(error, requestId, hostId).text;
}

/** An error answer: `{ RequestId, HostId, Code, Message, Recommend }`, or `<Error>` in XML. */
export function sendError(
  res: ServerResponse,
  requestId: string,
  hostId: string,
  error: SimError,
  format: ResponseFormat,
): void {
  if (format === 'XML') {
    const text = toXmlDocument('Error', errorBody(error, requestId, hostId));
    send(res, error.status, requestId, text, format, error.headers);
    return;
  }
  const json = errorJsonPart(error, requestId, hostId);
  send(res, error.status, requestId, json.text, format, error.headers, json.bytes);
}

/** The admin routes' plain JSON. */
export function sendAdminJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

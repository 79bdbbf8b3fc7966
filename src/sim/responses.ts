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
): void {
  if (res.destroyed || res.headersSent) return;
  // A flat list is the cheapest form writeHead takes: no object to build, nothing to merge.
  const headers: (string | number)[] = [
    'content-type',
    format === 'XML' ? XML_CONTENT_TYPE : JSON_CONTENT_TYPE,
    'content-length',
    Buffer.byteLength(text),
    'x-acs-request-id',
    requestId,
  ];
  if (extraHeaders) {
    for (const name of Object.keys(extraHeaders)) headers.push(name, extraHeaders[name] as string);
  }
  res.writeHead(status, headers);
  res.end(text);
}

/** A 200 answer; `action` names the XML root (`<UpdateIpsecServerResponse>`). */
export function sendSuccess(
  res: ServerResponse,
  requestId: string,
  action: string,
  body: Record<string, unknown>,
  format: ResponseFormat,
): void {
  const text = format === 'XML' ? toXmlDocument(`${action}Response`, body) : JSON.stringify(body);
  send(res, 200, requestId, text, format, undefined);
}

/** Ids that JSON carries as they are, inside quotes and inside the Recommend link alike. */
const PLAIN_ID = /^[0-9A-Za-z-]+$/;

/**
 * An error's part of the JSON error body (Code, Message, and the Recommend link up to the
 * request id), made once per answer: the common answers are made once (errors.ts), so their
 * text is too.
 */
const errorTails = new WeakMap<SimError, string>();

function errorTail(error: SimError): string {
  let tail = errorTails.get(error);
  if (tail === undefined) {
    const recommend = JSON.stringify(
      `${RECOMMEND_PREFIX}${encodeURIComponent(error.code)}${RECOMMEND_MIDDLE}`,
    );
    tail = `"Code":${JSON.stringify(error.code)},"Message":${JSON.stringify(error.message)},"Recommend":${recommend.slice(0, -1)}`;
    errorTails.set(error, tail);
  }
  return tail;
}

// Calls to one simulator name one host; its JSON form is kept rather than made per call.
let lastHostId = DEFAULT_HOST_ID;
let lastHostIdJson = JSON.stringify(DEFAULT_HOST_ID);

function hostIdJson(hostId: string): string {
  if (hostId !== lastHostId) {
    lastHostId = hostId;
    lastHostIdJson = JSON.stringify(hostId);
  }
  return lastHostIdJson;
}

/** JSON.stringify(errorBody(...)), byte for byte, without building the body first. */
export function errorJson(error: SimError, requestId: string, hostId: string): string {
  if (!PLAIN_ID.test(requestId)) return JSON.stringify(errorBody(error, requestId, hostId));
  return `{"RequestId":"${requestId}","HostId":${hostIdJson(hostId)},${errorTail(error)}${requestId}"}`;
}

/** An error answer: `{ RequestId, HostId, Code, Message, Recommend }`, or `<Error>` in XML. */
export function sendError(
  res: ServerResponse,
  requestId: string,
  hostId: string,
  error: SimError,
  format: ResponseFormat,
): void {
  const text =
    format === 'XML'
      ? toXmlDocument('Error', errorBody(error, requestId, hostId))
      : errorJson(error, requestId, hostId);
  send(res, error.status, requestId, text, format, error.headers);
}

/** The admin routes' plain JSON. */
export function sendAdminJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

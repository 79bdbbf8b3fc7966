import { randomUUID } from 'node:crypto';
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

/** Upper-case UUID, like `B61C08E5-403A-46A2-96C1-F7B1216DB10C`; randomUUID draws from a pooled buffer. */
export function newRequestId(): string {
  return randomUUID().toUpperCase();
}

export interface ErrorBody extends Record<string, unknown> {
  RequestId: string;
  HostId: string;
  Code: string;
  Message: string;
  Recommend: string;
}

export function errorBody(error: SimError, requestId: string, hostId: string): ErrorBody {
  return {
    RequestId: requestId,
    HostId: hostId,
    Code: error.code,
    Message: error.message,
    Recommend: `https://api.aliyun.com/troubleshoot?q=${encodeURIComponent(error.code)}&product=Vpc&requestId=${requestId}`,
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
  const headers: Record<string, string | number> = {
    'content-type': format === 'XML' ? XML_CONTENT_TYPE : JSON_CONTENT_TYPE,
    'content-length': Buffer.byteLength(text),
    'x-acs-request-id': requestId,
  };
  if (extraHeaders) Object.assign(headers, extraHeaders);
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

/** An error answer: `{ RequestId, HostId, Code, Message, Recommend }`, or `<Error>` in XML. */
export function sendError(
  res: ServerResponse,
  requestId: string,
  hostId: string,
  error: SimError,
  format: ResponseFormat,
): void {
  const body = errorBody(error, requestId, hostId);
  const text = format === 'XML' ? toXmlDocument('Error', body) : JSON.stringify(body);
  send(res, error.status, requestId, text, format, error.headers);
}

/** The admin routes' plain JSON. */
export function sendAdminJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

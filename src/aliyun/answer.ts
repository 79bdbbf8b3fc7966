import type { IncomingHttpHeaders } from 'node:http';
import { AliyunApiError } from './errors.js';

/*
 * What an answer from the cloud means: the JSON body of a success, or the error it stands for.
 */

/**
 * Error responses that carry no Alibaba Cloud error body (an HTML 502 from a load balancer, an
 * empty 504) get the code `HTTP.<status>`, e.g. `HTTP.502`; a success status whose body is not a
 * JSON object gets `HTTP.<status>.NotJson`. The dot keeps them apart from every cloud code, and
 * `httpStatus` still carries the number for policies keyed on it (5xx is transient, 429 throttled).
 */
export function httpStatusCode(status: number): string {
  return `HTTP.${status}`;
}

function isJsonWhitespace(charCode: number): boolean {
  return charCode === 0x20 || charCode === 0x0a || charCode === 0x0d || charCode === 0x09;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  // Skip the throw-and-catch of JSON.parse for the HTML and empty bodies proxies send.
  let first = 0;
  while (first < text.length && isJsonWhitespace(text.charCodeAt(first))) first++;
  if (text.charCodeAt(first) !== 0x7b /* { */) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The cloud writes `Code`; some gateways and older APIs write `code`. */
function stringField(
  body: Record<string, unknown> | undefined,
  name: string,
  camelName: string,
): string | undefined {
  if (body === undefined) return undefined;
  const value = body[name] ?? body[camelName];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function headerField(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * What a body that is not the cloud's was, without its text: a proxy's or portal's page may quote
 * the request's URL, and with it every parameter of the call, a Psk included (and the message
 * goes to the audit on every retry). Its type, its size and a title (or first heading) that quotes nothing
 * still tell a load balancer's 502 from a captive portal.
 */
function describeBody(headers: IncomingHttpHeaders, text: string): string {
  if (text.trim() === '') return 'an empty body';
  const type = headerField(headers, 'content-type')?.split(';')[0]?.trim() || 'an untyped';
  const title = /<(title|h1)[^>]*>([^<]{1,80})<\/\1>/i.exec(text)?.[2]?.trim();
  const shownTitle = title && !/[=?&%/\\]/.test(title) ? `, titled "${title}"` : '';
  return `${type === 'an untyped' ? type : `a ${type}`} body of ${Buffer.byteLength(text)} bytes${shownTitle}`;
}

/**
 * A signature error's message ends with the string the cloud signed, which under V1 is every
 * parameter of the call, a Psk included: it goes no further than the words before it.
 */
function withoutStringToSign(message: string): string {
  const at = message.search(/server string to sign is:/i);
  return at < 0 ? message : `${message.slice(0, at)}server string to sign is: [omitted]`;
}

/**
 * The parsed JSON body of a 2xx answer, or the AliyunApiError an error answer stands for. The error
 * is returned, not thrown: most dry runs end here, and a throw per call would only be caught again.
 */
export function interpretAnswer(
  status: number,
  headers: IncomingHttpHeaders,
  text: string,
): Record<string, unknown> | AliyunApiError {
  const body = parseJsonObject(text);
  if (status >= 200 && status < 300) {
    if (body) return body;
    return new AliyunApiError({
      code: `${httpStatusCode(status)}.NotJson`,
      message: `HTTP ${status} with a body that is not a JSON object: ${describeBody(headers, text)}`,
      httpStatus: status,
      requestId: headerField(headers, 'x-acs-request-id'),
    });
  }
  const cloudCode = stringField(body, 'Code', 'code');
  if (cloudCode) {
    return new AliyunApiError({
      code: cloudCode,
      message: withoutStringToSign(stringField(body, 'Message', 'message') ?? ''),
      httpStatus: status,
      requestId: stringField(body, 'RequestId', 'requestId') ?? headerField(headers, 'x-acs-request-id'),
      hostId: stringField(body, 'HostId', 'hostId'),
      recommend: stringField(body, 'Recommend', 'recommend'),
    });
  }
  return new AliyunApiError({
    code: httpStatusCode(status),
    message: `HTTP ${status} without an Alibaba Cloud error body: ${describeBody(headers, text)}`,
    httpStatus: status,
    requestId: headerField(headers, 'x-acs-request-id'),
  });
}

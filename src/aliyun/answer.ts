import type { IncomingHttpHeaders } from 'node:http';
import { describeBody } from '../body-description.js';
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

// The cloud's XML error document: `<Error>` holding one element per field, text only.
const XML_ERROR = /^\s*(?:<\?xml[^>]*\?>\s*)?<Error>([\s\S]*)<\/Error>\s*$/;
const XML_FIELD = /<(RequestId|HostId|Code|Message|Recommend)>(?:<!\[CDATA\[([\s\S]*?)\]\]>|([^<]*))<\/\1>/g;
const XML_ENTITY = /&(?:(amp|lt|gt|quot|apos)|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));/g;
const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlText(text: string): string {
  return text.replace(XML_ENTITY, (entity, name?: string, decimal?: string, hex?: string) => {
    if (name) return NAMED_ENTITIES[name] ?? entity;
    const codePoint = decimal ? Number(decimal) : Number.parseInt(hex as string, 16);
    return codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : entity;
  });
}

function isXmlType(headers: IncomingHttpHeaders): boolean {
  const type = headerField(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  return type === 'text/xml' || type === 'application/xml';
}

/**
 * The fields of an XML error answer. The official V3 SDK (openapi-core's doRequest) reads a 4xx/5xx
 * body labelled `text/xml;charset=utf-8` as XML and takes `Error.Code` from it; reading it as "no
 * cloud body" instead would judge a Throttling.User or VpnGateway.Configuring by its bare 400.
 */
function parseXmlError(headers: IncomingHttpHeaders, text: string): Record<string, string> | undefined {
  if (!isXmlType(headers)) return undefined;
  const inner = XML_ERROR.exec(text)?.[1];
  if (inner === undefined) return undefined;
  const fields: Record<string, string> = {};
  for (const match of inner.matchAll(XML_FIELD)) {
    fields[match[1] as string] = match[2] ?? xmlText(match[3] ?? '');
  }
  return fields;
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
 * A signature error's message ends with the string the cloud signed, which under V1 is every
 * parameter of the call, a Psk included: it goes no further than the words before it.
 */
function withoutStringToSign(message: string): string {
  const at = message.search(/server string to sign is:/i);
  return at < 0 ? message : `${message.slice(0, at)}server string to sign is: [omitted]`;
}

/**
 * The wait a throttled answer asks for: `x-acs-retry-after` in milliseconds, which the official
 * SDK (openapi-core getThrottlingTimeLeft) passes on as its ThrottlingError's retryAfter, or else
 * HTTP's own Retry-After in seconds, which a gateway in front may send with a 429.
 */
function retryAfterMs(headers: IncomingHttpHeaders): number | undefined {
  const milliseconds = headerField(headers, 'x-acs-retry-after');
  if (milliseconds !== undefined && /^\d{1,9}$/.test(milliseconds.trim())) return Number(milliseconds);
  const seconds = headerField(headers, 'retry-after');
  if (seconds !== undefined && /^\d{1,6}$/.test(seconds.trim())) return Number(seconds) * 1_000;
  return undefined;
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
      message: `HTTP ${status} with a body that is not a JSON object: ${describeBody(headerField(headers, 'content-type'), text)}`,
      httpStatus: status,
      requestId: headerField(headers, 'x-acs-request-id'),
    });
  }
  const errorFields = body ?? parseXmlError(headers, text);
  const cloudCode = stringField(errorFields, 'Code', 'code');
  if (cloudCode) {
    return new AliyunApiError({
      code: cloudCode,
      message: withoutStringToSign(stringField(errorFields, 'Message', 'message') ?? ''),
      httpStatus: status,
      requestId:
        stringField(errorFields, 'RequestId', 'requestId') ?? headerField(headers, 'x-acs-request-id'),
      hostId: stringField(errorFields, 'HostId', 'hostId'),
      recommend: stringField(errorFields, 'Recommend', 'recommend'),
      retryAfterMs: retryAfterMs(headers),
    });
  }
  return new AliyunApiError({
    code: httpStatusCode(status),
    message: `HTTP ${status} without an Alibaba Cloud error body: ${describeBody(headerField(headers, 'content-type'), text)}`,
    httpStatus: status,
    requestId: headerField(headers, 'x-acs-request-id'),
    retryAfterMs: retryAfterMs(headers),
  });
}

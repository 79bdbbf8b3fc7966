import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { packageVersion } from '../package-info.js';
import { AliyunApiError, AliyunTransportError, EndpointError, ParamEncodingError } from './errors.js';
import { percentEncode } from './percent-encode.js';
import {
  buildV1CommonParams,
  type Clock,
  canonicalQueryString,
  EMPTY_BODY_SHA256,
  formatAcsTimestamp,
  type NonceSource,
  randomNonce,
  signV1Canonical,
  signV3WithCanonicalQuery,
  systemClock,
} from './signer.js';
import { toTransportError } from './transport-errors.js';
import type { CallOptions, Credentials, RpcCaller, RpcParams, SignatureVersion } from './types.js';

export const DEFAULT_API_VERSION = '2016-04-28';
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_CONNECTIONS = 16;
// Cloud answers are a few KiB; a runaway body from a broken proxy must not eat the worker's memory.
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const ACTION_NAME = /^[A-Za-z][A-Za-z0-9]*$/;
const USER_AGENT = `ipsec-fleet/${packageVersion}`;

export interface AliyunClientOptions {
  credentials: Credentials;
  /** Origin with scheme, e.g. from resolveEndpoint(): `https://vpc.cn-shanghai.aliyuncs.com`. */
  endpoint: string;
  apiVersion?: string;
  signatureVersion?: SignatureVersion;
  /** Only for V1: GET puts everything in the query, POST sends a form body. */
  v1Method?: 'GET' | 'POST';
  /** Default deadline of one call: queueing for a connection, connecting, headers and body. */
  timeoutMs?: number;
  /** Default: the call deadline. */
  connectTimeoutMs?: number;
  /** Keep-alive connections to the endpoint, at most. */
  maxConnections?: number;
  clock?: Clock;
  nonce?: NonceSource;
}

interface OutgoingRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/**
 * Error responses that carry no Alibaba Cloud error body (an HTML 502 from a load balancer, an
 * empty 504) get the code `HTTP.<status>`, e.g. `HTTP.502`; a success status whose body is not a
 * JSON object gets `HTTP.<status>.NotJson`. The dot keeps them apart from every cloud code, and
 * `httpStatus` still carries the number for policies keyed on it (5xx is transient, 429 throttled).
 */
export function httpStatusCode(status: number): string {
  return `HTTP.${status}`;
}

function abortForDeadline(controller: AbortController, timeoutMs: number): void {
  controller.abort(new DOMException(`no complete answer within ${timeoutMs} ms`, 'TimeoutError'));
}

function toWireValue(name: string, value: string | number | boolean): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (!Number.isFinite(value))
    throw new ParamEncodingError(`parameter ${name} is ${value}, not a finite number`);
  return String(value);
}

/** Undefined parameters are left out, as the official SDK leaves out unset request fields. */
function toWireParams(params: RpcParams, into: Record<string, string>): Record<string, string> {
  for (const name of Object.keys(params)) {
    const value = params[name];
    if (value !== undefined) into[name] = toWireValue(name, value);
  }
  return into;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  // Skip the throw-and-catch of JSON.parse for the HTML and empty bodies proxies send.
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function stringField(body: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = body?.[name] ?? body?.[name.charAt(0).toLowerCase() + name.slice(1)];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function headerField(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

function bodySnippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return 'an empty body';
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/**
 * One signed-RPC client per credentials and endpoint. It keeps one keep-alive connection pool to
 * the endpoint for its whole life, so create it once and share it; close() releases the sockets.
 */
export class AliyunClient implements RpcCaller {
  readonly endpoint: string;
  private readonly pool: Pool;
  private readonly host: string;
  private readonly credentials: Credentials;
  private readonly apiVersion: string;
  private readonly signatureVersion: SignatureVersion;
  private readonly v1Method: 'GET' | 'POST';
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly nonce: NonceSource;

  constructor(options: AliyunClientOptions) {
    let url: URL;
    try {
      url = new URL(options.endpoint);
    } catch {
      throw new EndpointError(`endpoint ${JSON.stringify(options.endpoint)} is not a URL with a scheme`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new EndpointError(`endpoint ${JSON.stringify(options.endpoint)} must use http:// or https://`);
    }
    this.endpoint = url.origin;
    this.host = url.host;
    this.credentials = options.credentials;
    this.apiVersion = options.apiVersion ?? DEFAULT_API_VERSION;
    this.signatureVersion = options.signatureVersion ?? 'v3';
    this.v1Method = options.v1Method ?? 'POST';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
    this.nonce = options.nonce ?? randomNonce;
    this.pool = new Pool(url.origin, {
      connections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      connect: { timeout: options.connectTimeoutMs ?? this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
  }

  /**
   * Sends one call and returns the parsed JSON body of a 2xx answer. Throws AliyunApiError for an
   * answer that is an error (DryRunOperation included), AliyunTransportError when no answer came.
   */
  async call<T = Record<string, unknown>>(
    action: string,
    params: RpcParams,
    options?: CallOptions,
  ): Promise<T> {
    const callerSignal = options?.signal;
    if (callerSignal?.aborted) {
      throw new AliyunTransportError('TRANSPORT_ABORTED', `${action}: aborted before it was sent`, {
        cause: callerSignal.reason,
      });
    }
    const request =
      this.signatureVersion === 'v3' ? this.buildV3(action, params) : this.buildV1(action, params);
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;

    // One controller per call, fed by our timer and the caller's signal. AbortSignal.any() would be
    // shorter, but it keeps every combined signal reachable from a long-lived caller signal (a
    // worker's shutdown signal) until that one fires: a leak at thousands of calls per second.
    const controller = new AbortController();
    const timer = setTimeout(abortForDeadline, timeoutMs, controller, timeoutMs);
    const onCallerAbort = callerSignal ? () => controller.abort(callerSignal.reason) : undefined;
    if (onCallerAbort) callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    try {
      const response = await this.pool.request({
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body,
        signal: controller.signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      // Read the body whatever the status, or the connection cannot go back to the pool.
      const text = await response.body.text();
      return this.interpret<T>(response.statusCode, response.headers, text);
    } catch (error) {
      if (error instanceof AliyunApiError) throw error;
      if (callerSignal?.aborted) {
        throw new AliyunTransportError(
          'TRANSPORT_ABORTED',
          `${action} to ${this.endpoint}: aborted by the caller`,
          {
            cause: error,
          },
        );
      }
      if (controller.signal.aborted) {
        throw new AliyunTransportError(
          'TRANSPORT_TIMEOUT',
          `${action} to ${this.endpoint}: no complete answer within ${timeoutMs} ms`,
          { cause: error },
        );
      }
      throw toTransportError(error, `${action} to ${this.endpoint}`);
    } finally {
      clearTimeout(timer);
      if (onCallerAbort) callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** Waits for calls in flight, then closes the connections. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private checkAction(action: string): void {
    if (!ACTION_NAME.test(action)) {
      throw new ParamEncodingError(`action ${JSON.stringify(action)} is not an API action name`);
    }
  }

  /** As the official SDK sends it: POST, every parameter in the query, empty body. */
  private buildV3(action: string, params: RpcParams): OutgoingRequest {
    this.checkAction(action);
    const canonicalQuery = canonicalQueryString(toWireParams(params, {}));
    const headers = signV3WithCanonicalQuery(
      {
        method: 'POST',
        pathname: '/',
        headers: {
          host: this.host,
          'x-acs-action': action,
          'x-acs-version': this.apiVersion,
          'x-acs-date': formatAcsTimestamp(this.clock()),
          'x-acs-signature-nonce': this.nonce(),
          'x-acs-content-sha256': EMPTY_BODY_SHA256,
          accept: 'application/json',
          'user-agent': USER_AGENT,
        },
        credentials: this.credentials,
      },
      canonicalQuery,
    );
    return { method: 'POST', path: canonicalQuery === '' ? '/' : `/?${canonicalQuery}`, headers };
  }

  private buildV1(action: string, params: RpcParams): OutgoingRequest {
    this.checkAction(action);
    // Common parameters are written last so a business parameter cannot overwrite what is signed as metadata.
    const allParams = toWireParams(params, {});
    Object.assign(
      allParams,
      buildV1CommonParams({
        action,
        version: this.apiVersion,
        credentials: this.credentials,
        now: this.clock(),
        nonce: this.nonce(),
      }),
    );
    const canonical = canonicalQueryString(allParams);
    const signature = signV1Canonical(canonical, this.v1Method, this.credentials.accessKeySecret);
    const encoded = `${canonical}&Signature=${percentEncode(signature)}`;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    if (this.v1Method === 'GET') return { method: 'GET', path: `/?${encoded}`, headers };
    headers['content-type'] = 'application/x-www-form-urlencoded';
    return { method: 'POST', path: '/', headers, body: encoded };
  }

  private interpret<T>(status: number, headers: IncomingHttpHeaders, text: string): T {
    const body = parseJsonObject(text);
    if (status >= 200 && status < 300) {
      if (body) return body as T;
      throw new AliyunApiError({
        code: `${httpStatusCode(status)}.NotJson`,
        message: `HTTP ${status} with a body that is not a JSON object: ${bodySnippet(text)}`,
        httpStatus: status,
        requestId: headerField(headers, 'x-acs-request-id'),
      });
    }
    const cloudCode = stringField(body, 'Code');
    if (cloudCode) {
      throw new AliyunApiError({
        code: cloudCode,
        message: stringField(body, 'Message') ?? '',
        httpStatus: status,
        requestId: stringField(body, 'RequestId') ?? headerField(headers, 'x-acs-request-id'),
        hostId: stringField(body, 'HostId'),
        recommend: stringField(body, 'Recommend'),
      });
    }
    throw new AliyunApiError({
      code: httpStatusCode(status),
      message: `HTTP ${status} without an Alibaba Cloud error body: ${bodySnippet(text)}`,
      httpStatus: status,
      requestId: headerField(headers, 'x-acs-request-id'),
    });
  }
}

import type { IncomingHttpHeaders } from 'node:http';
import { type Dispatcher, Pool } from 'undici';
import { packageVersion } from '../package-info.js';
import { AliyunApiError, AliyunTransportError, EndpointError, ParamEncodingError } from './errors.js';
import { percentEncode } from './percent-encode.js';
import {
  buildV1CommonParams,
  type Clock,
  canonicalQueryString,
  createV3RpcSigner,
  formatAcsTimestamp,
  type NonceSource,
  randomNonce,
  signV1Canonical,
  systemClock,
  type V3RpcCall,
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

function bodySnippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat === '') return 'an empty body';
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/**
 * The parsed JSON body of a 2xx answer, or the AliyunApiError an error answer stands for. The error
 * is returned, not thrown: most dry runs end here, and a throw per call would only be caught again.
 */
function interpretAnswer(
  status: number,
  headers: IncomingHttpHeaders,
  text: string,
): Record<string, unknown> | AliyunApiError {
  const body = parseJsonObject(text);
  if (status >= 200 && status < 300) {
    if (body) return body;
    return new AliyunApiError({
      code: `${httpStatusCode(status)}.NotJson`,
      message: `HTTP ${status} with a body that is not a JSON object: ${bodySnippet(text)}`,
      httpStatus: status,
      requestId: headerField(headers, 'x-acs-request-id'),
    });
  }
  const cloudCode = stringField(body, 'Code', 'code');
  if (cloudCode) {
    return new AliyunApiError({
      code: cloudCode,
      message: stringField(body, 'Message', 'message') ?? '',
      httpStatus: status,
      requestId: stringField(body, 'RequestId', 'requestId') ?? headerField(headers, 'x-acs-request-id'),
      hostId: stringField(body, 'HostId', 'hostId'),
      recommend: stringField(body, 'Recommend', 'recommend'),
    });
  }
  return new AliyunApiError({
    code: httpStatusCode(status),
    message: `HTTP ${status} without an Alibaba Cloud error body: ${bodySnippet(text)}`,
    httpStatus: status,
    requestId: headerField(headers, 'x-acs-request-id'),
  });
}

/** Undici's own text() skips a UTF-8 byte order mark too; a proxy may add one. */
function bodyText(chunks: Buffer[], length: number): string {
  if (length === 0) return '';
  const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
  const start = length > 2 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return bytes.toString('utf8', start, length);
}

const NO_HEADERS: IncomingHttpHeaders = Object.freeze({});

function onDeadline(exchange: Exchange): void {
  exchange.stop(
    'timeout',
    new DOMException(`no complete answer within ${exchange.timeoutMs} ms`, 'TimeoutError'),
  );
}

/**
 * One call on undici's dispatcher. It gathers the answer into buffers and settles the call's
 * promise once: from the answer, a transport error, the deadline or the caller's signal, whichever
 * comes first. This replaces pool.request(), whose response stream, async resource and
 * AbortController per call cost more CPU than signing; undici itself still enforces the response
 * size cap, the headers and body timeouts, and keep-alive.
 *
 * It uses undici's controller-style callbacks (onRequestStart ... onResponseError). The older
 * onConnect/onHeaders/onData set would skip a wrapper and a header object per call here, but undici
 * 8 dropped it. It is also the caller signal's `abort` listener (handleEvent), so no closure is
 * made per call.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = NO_HEADERS;
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private settled = false;
  private stoppedBy: 'timeout' | 'aborted' | undefined;
  private stopReason: unknown;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly target: string,
    private readonly action: string,
    readonly timeoutMs: number,
    private readonly callerSignal: AbortSignal | undefined,
    private readonly resolve: (body: Record<string, unknown>) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.timer = setTimeout(onDeadline, timeoutMs, this);
    // A listener per call, removed when the call settles: a worker's shutdown signal outlives
    // thousands of calls, and AbortSignal.any() would keep every one of them reachable from it.
    callerSignal?.addEventListener('abort', this);
  }

  handleEvent(): void {
    this.stop('aborted', this.callerSignal?.reason);
  }

  /**
   * Ends the call now. Once the request holds a connection, aborting it through undici's
   * controller fails it with `reason` and calls onResponseError at once; while it still waits for
   * one, the call settles here and onRequestStart aborts the request before a byte of it is
   * written. Either way the call is settled when this returns, whatever undici does.
   */
  stop(by: 'timeout' | 'aborted', reason: unknown): void {
    if (this.settled || this.stoppedBy) return;
    this.stoppedBy = by;
    this.stopReason = reason;
    this.controller?.abort(reason as Error);
    if (!this.settled) this.fail(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.stoppedBy) controller.abort(this.stopReason as Error);
    else this.controller = controller;
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // 1xx interim answers come first; only the final answer has a body.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  onResponseEnd(): void {
    // The whole body was read, whatever the status, so the connection goes back to the pool.
    if (this.settled) return;
    this.finish();
    const answer = interpretAnswer(this.status, this.headers, bodyText(this.chunks, this.length));
    if (answer instanceof AliyunApiError) this.reject(answer);
    else this.resolve(answer);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.settled) return;
    this.fail(error);
  }

  private fail(error: unknown): void {
    this.finish();
    const { action, target } = this;
    if (this.stoppedBy === 'aborted' || this.callerSignal?.aborted) {
      this.reject(
        new AliyunTransportError('TRANSPORT_ABORTED', `${action} to ${target}: aborted by the caller`, {
          cause: error,
        }),
      );
    } else if (this.stoppedBy === 'timeout') {
      this.reject(
        new AliyunTransportError(
          'TRANSPORT_TIMEOUT',
          `${action} to ${target}: no complete answer within ${this.timeoutMs} ms`,
          { cause: error },
        ),
      );
    } else {
      this.reject(toTransportError(error, `${action} to ${target}`));
    }
  }

  private finish(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this);
  }
}

/**
 * One signed-RPC client per credentials and endpoint. It keeps one keep-alive connection pool to
 * the endpoint for its whole life, so create it once and share it; close() releases the sockets.
 */
export class AliyunClient implements RpcCaller {
  readonly endpoint: string;
  private readonly pool: Pool;
  private readonly credentials: Credentials;
  private readonly apiVersion: string;
  private readonly signatureVersion: SignatureVersion;
  private readonly v1Method: 'GET' | 'POST';
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly nonce: NonceSource;
  private readonly signV3: (call: V3RpcCall) => Record<string, string>;
  // x-acs-date has a resolution of one second: format it once per second, not once per call.
  private stampSecond = Number.NaN;
  private stamp = '';

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
    this.credentials = options.credentials;
    this.apiVersion = options.apiVersion ?? DEFAULT_API_VERSION;
    this.signatureVersion = options.signatureVersion ?? 'v3';
    this.v1Method = options.v1Method ?? 'POST';
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
    this.nonce = options.nonce ?? randomNonce;
    this.signV3 = createV3RpcSigner({
      host: url.host,
      version: this.apiVersion,
      credentials: this.credentials,
    });
    this.pool = new Pool(url.origin, {
      connections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      connect: { timeout: options.connectTimeoutMs ?? this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
  }

  /**
   * Sends one call and returns the parsed JSON body of a 2xx answer. Rejects with AliyunApiError for
   * an answer that is an error (DryRunOperation included), AliyunTransportError when no answer came.
   */
  call<T = Record<string, unknown>>(action: string, params: RpcParams, options?: CallOptions): Promise<T> {
    const callerSignal = options?.signal;
    if (callerSignal?.aborted) {
      return Promise.reject(
        new AliyunTransportError('TRANSPORT_ABORTED', `${action}: aborted before it was sent`, {
          cause: callerSignal.reason,
        }),
      );
    }
    let request: OutgoingRequest;
    try {
      request = this.signatureVersion === 'v3' ? this.buildV3(action, params) : this.buildV1(action, params);
    } catch (error) {
      return Promise.reject(error);
    }
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    return new Promise<T>((resolve, reject) => {
      const exchange = new Exchange(
        this.endpoint,
        action,
        timeoutMs,
        callerSignal,
        resolve as (body: Record<string, unknown>) => void,
        reject,
      );
      this.pool.dispatch(
        {
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: request.body,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
        exchange,
      );
    });
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

  private acsDate(): string {
    const now = this.clock === systemClock ? undefined : this.clock();
    const second = Math.floor((now ? now.getTime() : Date.now()) / 1000);
    if (second !== this.stampSecond) {
      this.stamp = formatAcsTimestamp(now ?? new Date(second * 1000));
      this.stampSecond = second;
    }
    return this.stamp;
  }

  /** As the official SDK sends it: POST, every parameter in the query, empty body. */
  private buildV3(action: string, params: RpcParams): OutgoingRequest {
    this.checkAction(action);
    const canonicalQuery = canonicalQueryString(toWireParams(params, {}));
    const headers = this.signV3({ action, canonicalQuery, date: this.acsDate(), nonce: this.nonce() });
    headers.accept = 'application/json';
    headers['user-agent'] = USER_AGENT;
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
}

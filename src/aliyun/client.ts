import { Pool } from 'undici';
import { packageVersion } from '../package-info.js';
import { AliyunTransportError, EndpointError, ParamEncodingError } from './errors.js';
import { Exchange } from './exchange.js';
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

/**
 * Helpers for the simulator's acceptance tests: start and always close simulators, clients bound
 * to them, hand-signed raw requests (to craft what a well-behaved client never sends), the admin
 * routes, and one `Outcome` shape for answers from our client and from both official SDKs.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { afterEach } from 'vitest';
import { AliyunClient, type AliyunClientOptions } from '../../src/aliyun/client.js';
import { AliyunApiError, AliyunTransportError } from '../../src/aliyun/errors.js';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import {
  buildV1CommonParams,
  canonicalQueryString,
  EMPTY_BODY_SHA256,
  formatAcsTimestamp,
  signV1,
  signV3Request,
} from '../../src/aliyun/signer.js';
import type { Credentials } from '../../src/aliyun/types.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimulatorOptionsInput } from '../../src/sim/options.js';

export type Sim = Awaited<ReturnType<typeof startSimulator>>;
export type SimServer = Sim['servers'][number];

export const API_VERSION = '2016-04-28';

export const keyA: Credentials = { accessKeyId: 'LTAI5tKeyAlpha', accessKeySecret: 'alpha-secret/+=' };
export const keyB: Credentials = { accessKeyId: 'LTAI5tKeyBravo', accessKeySecret: 'bravo-secret' };

export function credentialsOf(sim: Sim): Credentials {
  return { accessKeyId: sim.accessKeyId, accessKeySecret: sim.accessKeySecret };
}

/** `ipsec-fleet api UpdateIpsecServer ... --DryRun true` for one simulated server, then `extra`. */
export function dryRunCliArgs(server: SimServer, endpoint: string, extra: string[] = []): string[] {
  return [
    'api',
    'UpdateIpsecServer',
    '--RegionId',
    server.regionId,
    '--IpsecServerId',
    server.ipsecServerId,
    '--DryRun',
    'true',
    '--endpoint',
    endpoint,
    ...extra,
  ];
}

/** The simulator's key as the environment variables the CLI reads. */
export function credentialsEnvOf(sim: Sim): NodeJS.ProcessEnv {
  return {
    ALIBABA_CLOUD_ACCESS_KEY_ID: sim.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: sim.accessKeySecret,
  };
}

/**
 * Registers an afterEach that closes every simulator and client made through the returned
 * functions, so a failing test cannot leak a listening server into the next one.
 */
export function useSimulators() {
  const sims: Sim[] = [];
  const clients: AliyunClient[] = [];
  const cleanups: Array<() => void | Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const cleanup of cleanups.splice(0)) await cleanup();
    await Promise.all(sims.splice(0).map((sim) => sim.close()));
  });

  return {
    async start(options: SimulatorOptionsInput = {}): Promise<Sim> {
      const sim = await startSimulator({ port: 0, ...options });
      sims.push(sim);
      return sim;
    },
    client(sim: Sim, options: Partial<AliyunClientOptions> = {}): AliyunClient {
      const client = new AliyunClient({
        credentials: credentialsOf(sim),
        endpoint: sim.endpoint,
        timeoutMs: 5_000,
        ...options,
      });
      clients.push(client);
      return client;
    },
    /** Runs `cleanup` after the test, before the simulators close. */
    defer(cleanup: () => void | Promise<void>): void {
      cleanups.push(cleanup);
    },
  };
}

/** What one call came back with, whichever client made it. */
export type Outcome =
  | { ok: true; status: 200; requestId: string; body: Record<string, unknown> }
  | { ok: false; status: number; code: string; message: string; requestId: string | undefined };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Normalizes a rejection from AliyunClient (AliyunApiError / AliyunTransportError), from the
 * official V3 SDK (`code`, `statusCode`, `data`) or from @alicloud/pop-core (`code`, `data`).
 */
export function outcomeOfError(error: unknown): Outcome {
  if (error instanceof AliyunApiError) {
    return {
      ok: false,
      status: error.httpStatus,
      code: error.code,
      message: error.message,
      requestId: error.requestId,
    };
  }
  if (error instanceof AliyunTransportError) {
    return { ok: false, status: 0, code: error.code, message: error.message, requestId: undefined };
  }
  if (isRecord(error) && typeof error.code === 'string' && isRecord(error.data)) {
    const data = error.data;
    return {
      ok: false,
      status: typeof error.statusCode === 'number' ? error.statusCode : 0,
      code: error.code,
      message: typeof data.Message === 'string' ? data.Message : String(error.message),
      requestId: typeof data.RequestId === 'string' ? data.RequestId : undefined,
    };
  }
  throw error;
}

export async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  let body: unknown;
  try {
    body = await promise;
  } catch (error) {
    return outcomeOfError(error);
  }
  if (!isRecord(body) || typeof body.RequestId !== 'string') {
    throw new Error(`test: a success without a RequestId: ${JSON.stringify(body)}`);
  }
  return { ok: true, status: 200, requestId: body.RequestId, body };
}

/** `OK` for a success, else the error code: the label compared in determinism tests. */
export function label(result: Outcome): string {
  return result.ok ? 'OK' : result.code;
}

/** label(await outcome(promise)). */
export async function labelOf(promise: Promise<unknown>): Promise<string> {
  return label(await outcome(promise));
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, when it is JSON (an empty object otherwise, so field checks fail clearly). */
  json: Record<string, unknown>;
  /** The body parsed as JSON, whatever its type; undefined when it is not JSON. */
  parsed: unknown;
}

async function send(
  url: string,
  method: 'GET' | 'POST',
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  const response = await request(url, { method, headers, body, headersTimeout: 5_000, bodyTimeout: 5_000 });
  const text = await response.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return {
    status: response.statusCode,
    headers: response.headers,
    text,
    json: isRecord(parsed) ? parsed : {},
    parsed,
  };
}

export interface V3Options {
  method?: 'GET' | 'POST';
  date?: Date;
  nonce?: string;
  /** Sign with these credentials (the Credential named in Authorization is theirs too). */
  signWith?: Credentials;
  /** Parameters to send instead of the signed ones: a request altered in transit. */
  sendQuery?: Record<string, string>;
}

/** A V3 (ACS3-HMAC-SHA256) request built from our signer's parts, sent with undici. */
export async function sendV3(
  endpoint: string,
  credentials: Credentials,
  action: string,
  params: Record<string, string>,
  options: V3Options = {},
): Promise<RawResponse> {
  const method = options.method ?? 'POST';
  const host = new URL(endpoint).host;
  const headers = signV3Request({
    method,
    pathname: '/',
    query: params,
    headers: {
      host,
      'x-acs-action': action,
      'x-acs-version': API_VERSION,
      'x-acs-date': formatAcsTimestamp(options.date ?? new Date()),
      'x-acs-signature-nonce': options.nonce ?? randomUUID(),
      'x-acs-content-sha256': EMPTY_BODY_SHA256,
      accept: 'application/json',
    },
    credentials: options.signWith ?? credentials,
  });
  const query = canonicalQueryString(options.sendQuery ?? params);
  return send(`${endpoint}/${query === '' ? '' : `?${query}`}`, method, headers);
}

export interface V1Options {
  method?: 'GET' | 'POST';
  now?: Date;
  nonce?: string;
  format?: 'JSON' | 'XML';
  signWith?: Credentials;
  /** Sign for this method while sending with `method`. */
  signMethod?: 'GET' | 'POST';
  sendParams?: (signed: Record<string, string>) => Record<string, string>;
}

/** A V1 (HMAC-SHA1) request: everything in the query for GET, a form body for POST. */
export async function sendV1(
  endpoint: string,
  credentials: Credentials,
  action: string,
  params: Record<string, string>,
  options: V1Options = {},
): Promise<RawResponse> {
  const method = options.method ?? 'GET';
  const all: Record<string, string> = {
    ...params,
    ...buildV1CommonParams({
      action,
      version: API_VERSION,
      credentials,
      now: options.now ?? new Date(),
      nonce: options.nonce ?? randomUUID(),
      format: options.format ?? 'JSON',
    }),
  };
  const signature = signV1(
    all,
    options.signMethod ?? method,
    (options.signWith ?? credentials).accessKeySecret,
  );
  const sent = options.sendParams ? options.sendParams(all) : all;
  const encoded = `${canonicalQueryString(sent)}&Signature=${percentEncode(signature)}`;
  if (method === 'GET') return send(`${endpoint}/?${encoded}`, 'GET', { accept: 'application/json' });
  return send(
    `${endpoint}/`,
    'POST',
    { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    encoded,
  );
}

/** GET on an unsigned admin route, parsed as JSON. */
export async function adminGet(sim: Sim, path: string): Promise<RawResponse> {
  return send(`${sim.endpoint}${path}`, 'GET', { accept: 'application/json' });
}

export async function adminPost(sim: Sim, path: string, body?: unknown): Promise<RawResponse> {
  return send(
    `${sim.endpoint}${path}`,
    'POST',
    { 'content-type': 'application/json' },
    body === undefined ? undefined : JSON.stringify(body),
  );
}

/** A millisecond time from whatever form `configuringUntil` takes (epoch number or ISO text). */
export function toMillis(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' || value instanceof Date) return new Date(value).getTime();
  throw new Error(`test: not a time: ${JSON.stringify(value)}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until the server's configuring window (if any) has passed, with a small margin. */
export async function waitUntilNotConfiguring(sim: Sim, ipsecServerId: string): Promise<void> {
  const until = sim.server(ipsecServerId)?.configuringUntil;
  if (until === undefined || until === null) return;
  const left = toMillis(until) - Date.now();
  if (left > 5_000) throw new Error(`test: ${ipsecServerId} is configuring for ${left} ms more`);
  if (left > 0) await sleep(left + 50);
}

/** First server matching `predicate`, or a test error naming what was looked for. */
export function pick(sim: Sim, what: string, predicate: (server: SimServer) => boolean): SimServer {
  const found = sim.servers.find(predicate);
  if (!found) throw new Error(`test setup: the simulator has no server that is ${what}`);
  return found;
}

import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import { z } from 'zod';
import { classifyTransportFailure } from '../aliyun/transport-errors.js';
import { type AuditEvent, auditEventSchema } from '../audit/event.js';
import { describeBody } from '../body-description.js';
import { IpsecFleetError } from '../errors.js';
import type { FieldChange } from '../ipsec/diff.js';
import type { MutableParamsInput } from '../ipsec/update-params.js';
import { type ChangeState, type ChangeView, TERMINAL_STATES } from '../orchestrator/change.js';
import type { LaneEntry } from '../orchestrator/changes.js';
import { packageVersion } from '../package-info.js';
import { sleep } from '../sleep.js';
import type { FieldIssue } from '../validation.js';

/**
 * A typed client of the ipsec-fleet HTTP API (docs/api-contract.md): one keep-alive pool to the
 * API, bearer auth, problem+json errors as ApiError, no answer as ApiUnreachableError, a deadline
 * per request, and the two streaming routes (JSON lines, server-sent events) as async iterators.
 */

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';
export const DEFAULT_API_TIMEOUT_MS = 10_000;
// Bounded reads of JSON answers: a list page or an audit query is at most a few MiB.
const MAX_JSON_BYTES = 64 * 1024 * 1024;
const USER_AGENT = `ipsec-fleet-cli/${packageVersion}`;

/** An RFC 9457 problem as the API sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code: string;
  errors?: FieldIssue[];
  [extra: string]: unknown;
}

const problemSchema = z.looseObject({
  type: z.string().optional(),
  title: z.string().optional(),
  status: z.number().int().optional(),
  detail: z.string().optional(),
  code: z.string().min(1),
  errors: z.array(z.looseObject({ field: z.string(), rule: z.string() })).optional(),
});

/** The API answered with an error status; `code` is the problem's stable code. */
export class ApiError extends IpsecFleetError {
  readonly status: number;
  readonly errors: FieldIssue[];
  readonly problem: Problem;

  constructor(problem: Problem) {
    const what = problem.detail ?? problem.title ?? `HTTP ${problem.status}`;
    super(problem.code, `HTTP ${problem.status}: ${what}`);
    this.status = problem.status;
    this.errors = problem.errors ?? [];
    this.problem = problem;
  }
}

/** No answer from the API: refused, reset, DNS, TLS, or no complete answer before the deadline. */
export class ApiUnreachableError extends IpsecFleetError {
  /** The transport failure, e.g. TRANSPORT_REFUSED or TRANSPORT_TIMEOUT. */
  readonly reason: string;

  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(reason === 'TRANSPORT_TIMEOUT' ? 'API_TIMEOUT' : 'API_UNREACHABLE', message, options);
    this.reason = reason;
  }
}

/** The API answered 2xx with something that is not what the contract describes. */
export class ApiResponseError extends IpsecFleetError {
  constructor(message: string) {
    super('API_BAD_RESPONSE', message);
  }
}

export interface SubmitChangeBody {
  ipsecServerId: string;
  regionId: string;
  params: MutableParamsInput;
  note?: string | undefined;
  profile?: string | undefined;
}

export interface SubmitChangeResult {
  change: ChangeView;
  /** 201: a new change; false (200) when an earlier submission with the same key was returned. */
  created: boolean;
}

export interface ChangeDetail {
  change: ChangeView;
  timeline: AuditEvent[];
  diff: FieldChange[];
}

export interface ListChangesParams {
  server?: string | undefined;
  state?: ChangeState | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

export interface ChangeList {
  changes: ChangeView[];
  nextCursor?: string | undefined;
}

export interface Lane {
  ipsecServerId: string;
  lane: LaneEntry[];
}

export interface AuditParams {
  change?: string | undefined;
  server?: string | undefined;
  /** Epoch milliseconds or ISO 8601. */
  from?: number | string | undefined;
  to?: number | string | undefined;
  limit?: number | undefined;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the client's deadline for this request. */
  timeoutMs?: number | undefined;
}

export interface ApiClientOptions {
  /** The API's base URL, e.g. `http://127.0.0.1:8080` or `https://host/ipsec-fleet`. */
  baseUrl: string;
  token?: string | undefined;
  /** Deadline of a whole request; for streams, of the answer's headers only. */
  timeoutMs?: number | undefined;
}

// Loose checks of what comes back: enough that the printers can rely on the fields they read,
// while fields the server adds later pass through.
const changeSchema = z.looseObject({
  id: z.string(),
  state: z.string(),
  ipsecServerId: z.string(),
  regionId: z.string(),
  params: z.record(z.string(), z.unknown()),
  actor: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
const changeEnvelopeSchema = z.looseObject({ change: changeSchema });
const changeDetailSchema = z.looseObject({
  change: changeSchema,
  timeline: z.array(auditEventSchema),
  diff: z.array(z.looseObject({ field: z.string() })),
});
const changeListSchema = z.looseObject({
  changes: z.array(changeSchema),
  nextCursor: z.string().nullish(),
});
const laneSchema = z.looseObject({
  ipsecServerId: z.string(),
  lane: z.array(z.looseObject({ position: z.number(), id: z.string(), state: z.string() })),
});
const auditListSchema = z.looseObject({ events: z.array(auditEventSchema) });

/** One server-sent event, as the HTML standard's parser dispatches it. */
export interface ServerSentEvent {
  event: string;
  data: string;
  id: string | undefined;
}

export interface PreparedRequest {
  method: 'GET' | 'POST';
  path: string;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
  body?: string;
  accept: string;
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly basePath: string;
  private readonly pool: Pool;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`API URL ${options.baseUrl} must use http:// or https://`);
    }
    this.baseUrl = url.origin + url.pathname.replace(/\/+$/, '');
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_API_TIMEOUT_MS;
    this.pool = new Pool(url.origin, {
      connections: 4,
      connect: { timeout: this.timeoutMs },
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
    });
  }

  async submitChange(
    body: SubmitChangeBody,
    options: RequestOptions & { idempotencyKey?: string | undefined } = {},
  ): Promise<SubmitChangeResult> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    const { status, body: answer } = await this.json(
      {
        method: 'POST',
        path: '/v1/changes',
        headers,
        body: JSON.stringify(body),
        accept: 'application/json',
      },
      changeEnvelopeSchema,
      options,
    );
    return { change: answer.change as unknown as ChangeView, created: status === 201 };
  }

  async getChange(id: string, options: RequestOptions = {}): Promise<ChangeDetail> {
    const { body } = await this.json(
      { method: 'GET', path: `/v1/changes/${encodeURIComponent(id)}`, accept: 'application/json' },
      changeDetailSchema,
      options,
    );
    return body as unknown as ChangeDetail;
  }

  async listChanges(params: ListChangesParams = {}, options: RequestOptions = {}): Promise<ChangeList> {
    const { body } = await this.json(
      { method: 'GET', path: '/v1/changes', query: { ...params }, accept: 'application/json' },
      changeListSchema,
      options,
    );
    return {
      changes: body.changes as unknown as ChangeView[],
      nextCursor: body.nextCursor ?? undefined,
    };
  }

  async cancelChange(id: string, options: RequestOptions = {}): Promise<{ change: ChangeView }> {
    const { body } = await this.json(
      { method: 'POST', path: `/v1/changes/${encodeURIComponent(id)}/cancel`, accept: 'application/json' },
      changeEnvelopeSchema,
      options,
    );
    return { change: body.change as unknown as ChangeView };
  }

  async lane(ipsecServerId: string, options: RequestOptions = {}): Promise<Lane> {
    const { body } = await this.json(
      {
        method: 'GET',
        path: `/v1/servers/${encodeURIComponent(ipsecServerId)}/lane`,
        accept: 'application/json',
      },
      laneSchema,
      options,
    );
    return body as unknown as Lane;
  }

  async audit(params: AuditParams = {}, options: RequestOptions = {}): Promise<{ events: AuditEvent[] }> {
    const { body } = await this.json(
      { method: 'GET', path: '/v1/audit', query: { ...params, format: 'json' }, accept: 'application/json' },
      auditListSchema,
      options,
    );
    return { events: body.events };
  }

  /**
   * The audit trail as it streams from the API, one JSON line at a time (no limit unless given).
   * The deadline covers the answer's headers; the body may take as long as it needs.
   */
  async *auditLines(params: AuditParams = {}, options: RequestOptions = {}): AsyncGenerator<string> {
    const body = await this.openStream(
      {
        method: 'GET',
        path: '/v1/audit',
        query: { ...params, format: 'jsonl' },
        accept: 'application/x-ndjson',
      },
      options,
    );
    yield* this.readStream(body, options.signal, splitLines);
  }

  /** The same stream, each line parsed and checked as an audit event. */
  async *auditEvents(params: AuditParams = {}, options: RequestOptions = {}): AsyncGenerator<AuditEvent> {
    for await (const line of this.auditLines(params, options)) {
      if (line.trim() !== '') yield parseAuditEvent(line);
    }
  }

  /**
   * One connection to a change's event stream: its timeline so far, then each event live. Ends
   * when the server ends the stream (after a terminal event); events other than `audit` are
   * skipped. `lastEventId` is sent as Last-Event-ID for servers that resume from it.
   */
  async *changeEvents(
    id: string,
    options: RequestOptions & { lastEventId?: string | undefined } = {},
  ): AsyncGenerator<AuditEvent> {
    const headers: Record<string, string> = {};
    if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
    const body = await this.openStream(
      {
        method: 'GET',
        path: `/v1/changes/${encodeURIComponent(id)}/events`,
        headers,
        accept: 'text/event-stream',
      },
      options,
    );
    for await (const message of this.readStream(body, options.signal, parseServerSentEvents)) {
      if (message.event === 'audit') yield parseAuditEvent(message.data);
    }
  }

  /**
   * Follows a change until a terminal event, each event once and in order. A stream that breaks
   * off before the end (a restarted or unreachable API) is opened again, a few times with a pause,
   * and events already seen are skipped: the server replays the timeline on every connection.
   */
  async *followChange(
    id: string,
    options: RequestOptions & { retries?: number; retryDelayMs?: number } = {},
  ): AsyncGenerator<AuditEvent> {
    const retries = options.retries ?? 5;
    const retryDelayMs = options.retryDelayMs ?? 1_000;
    const seen = new Set<string>();
    let lastEventId: string | undefined;
    let failures = 0;
    for (;;) {
      try {
        for await (const event of this.changeEvents(id, { ...options, lastEventId })) {
          if (seen.has(event.id)) continue;
          // Progress: only a new event shows the stream is more than a replay that breaks off.
          failures = 0;
          seen.add(event.id);
          lastEventId = event.id;
          yield event;
          if (isTerminalEvent(event)) return;
        }
        // Ended without a terminal event: the server went away mid-stream.
        if (++failures > retries) {
          throw new ApiUnreachableError(
            'TRANSPORT_RESET',
            `${this.baseUrl}: the event stream of change ${id} kept ending before the change did`,
          );
        }
      } catch (error) {
        if (!(error instanceof ApiUnreachableError) || ++failures > retries) throw error;
      }
      await sleep(retryDelayMs * failures, options.signal);
    }
  }

  /** Closes the connections (waiting for requests in flight). */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /** Drops the connections now, streams included. */
  async destroy(): Promise<void> {
    await this.pool.destroy();
  }

  protected async json<T extends z.ZodType>(
    request: PreparedRequest,
    schema: T,
    options: RequestOptions,
  ): Promise<{ status: number; body: z.output<T> }> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const { controller, release } = deadline(timeoutMs, options.signal);
    try {
      const response = await this.send(request, controller.signal, timeoutMs);
      const text = await readText(response.body, MAX_JSON_BYTES);
      if (response.statusCode >= 300) {
        throw new ApiError(problemOf(response.statusCode, response.headers, text));
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ApiResponseError(
          `${request.method} ${request.path} answered ${response.statusCode} with a body that is not JSON: ${describeBody(contentTypeOf(response.headers), text)}`,
        );
      }
      const result = schema.safeParse(parsed);
      if (!result.success) {
        throw new ApiResponseError(
          `${request.method} ${request.path} answered ${response.statusCode} with an unexpected body: ${z.prettifyError(result.error)}`,
        );
      }
      return { status: response.statusCode, body: result.data };
    } catch (error) {
      throw this.translate(error, request, options.signal, controller.signal, timeoutMs);
    } finally {
      release();
    }
  }

  /** Sends a request whose answer is a stream and returns the body of a 2xx answer. */
  protected async openStream(request: PreparedRequest, options: RequestOptions): Promise<StreamBody> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    // The deadline covers the headers; after that the caller's signal alone may stop the stream.
    const { controller, release } = deadline(timeoutMs, options.signal);
    try {
      const response = await this.send(request, controller.signal, timeoutMs, 0);
      if (response.statusCode >= 300) {
        const text = await readText(response.body, MAX_JSON_BYTES);
        throw new ApiError(problemOf(response.statusCode, response.headers, text));
      }
      release();
      return new StreamBody(response.body, request, this.baseUrl);
    } catch (error) {
      release();
      throw this.translate(error, request, options.signal, controller.signal, timeoutMs);
    }
  }

  protected async *readStream<T>(
    body: StreamBody,
    signal: AbortSignal | undefined,
    parse: (chunks: AsyncIterable<string>) => AsyncGenerator<T>,
  ): AsyncGenerator<T> {
    const onAbort = () => body.destroy(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      yield* parse(body.text());
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (error instanceof IpsecFleetError) throw error;
      throw unreachable(error, body.request, this.baseUrl);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.destroy();
    }
  }

  private send(request: PreparedRequest, signal: AbortSignal, timeoutMs: number, bodyTimeout = timeoutMs) {
    const headers: Record<string, string> = {
      accept: `${request.accept}, application/problem+json`,
      'user-agent': USER_AGENT,
      ...request.headers,
    };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    return this.pool.request({
      method: request.method,
      path: this.basePath + request.path + queryString(request.query),
      headers,
      body: request.body,
      signal,
      headersTimeout: timeoutMs,
      bodyTimeout,
    });
  }

  private translate(
    error: unknown,
    request: PreparedRequest,
    callerSignal: AbortSignal | undefined,
    signal: AbortSignal,
    timeoutMs: number,
  ): unknown {
    if (error instanceof IpsecFleetError) return error;
    if (callerSignal?.aborted) return callerSignal.reason;
    if (signal.aborted) {
      return new ApiUnreachableError(
        'TRANSPORT_TIMEOUT',
        `${this.baseUrl}: no complete answer to ${request.method} ${request.path} within ${timeoutMs} ms`,
        { cause: error },
      );
    }
    return unreachable(error, request, this.baseUrl);
  }
}

export function isTerminalEvent(event: Pick<AuditEvent, 'type'>): boolean {
  return TERMINAL_STATES.has(event.type as ChangeState);
}

function unreachable(error: unknown, request: PreparedRequest, baseUrl: string): ApiUnreachableError {
  const reason = classifyTransportFailure(error);
  const detail = error instanceof Error ? error.message : String(error);
  const what = {
    TRANSPORT_TIMEOUT: 'timed out',
    TRANSPORT_RESET: 'connection reset or closed',
    TRANSPORT_DNS: 'host name did not resolve',
    TRANSPORT_TLS: 'TLS handshake or certificate failed',
    TRANSPORT_REFUSED: 'connection refused',
    TRANSPORT_ABORTED: 'aborted',
    TRANSPORT_OTHER: 'no answer',
  }[reason];
  return new ApiUnreachableError(
    reason,
    `${baseUrl}: ${what} (${request.method} ${request.path}: ${detail})`,
    { cause: error },
  );
}

function parseAuditEvent(text: string): AuditEvent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ApiResponseError(`an audit event is not JSON: ${describeBody(undefined, text)}`);
  }
  const result = auditEventSchema.safeParse(parsed);
  if (!result.success) {
    throw new ApiResponseError(`an audit event has an unexpected shape: ${z.prettifyError(result.error)}`);
  }
  return result.data;
}

/** Reads a problem+json answer; anything else (a proxy's HTML 502) becomes a problem `HTTP_<status>`. */
export function problemOf(status: number, headers: IncomingHttpHeaders, text: string): Problem {
  const type = String(headers['content-type'] ?? '');
  if (/json/i.test(type) || text.trimStart().startsWith('{')) {
    try {
      const result = problemSchema.safeParse(JSON.parse(text));
      if (result.success) return { ...result.data, status } as Problem;
    } catch {
      // not JSON after all: described below
    }
  }
  return {
    status,
    code: `HTTP_${status}`,
    title: `HTTP ${status}`,
    detail: `the API answered ${status} with ${describeBody(contentTypeOf(headers), text)}`,
  };
}

function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (!query) return '';
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

function contentTypeOf(headers: IncomingHttpHeaders): string | undefined {
  const type = headers['content-type'];
  return Array.isArray(type) ? type[0] : type;
}

/** One controller fed by a timer and the caller's signal; `release` stops both feeding it. */
function deadline(timeoutMs: number, callerSignal: AbortSignal | undefined) {
  const controller = new AbortController();
  if (callerSignal?.aborted) controller.abort(callerSignal.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
    timeoutMs,
  );
  const onAbort = () => controller.abort(callerSignal?.reason);
  callerSignal?.addEventListener('abort', onAbort, { once: true });
  return {
    controller,
    release() {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onAbort);
    },
  };
}

interface ReadableBody extends AsyncIterable<Buffer | Uint8Array> {
  destroy(error?: Error): unknown;
}

export class StreamBody {
  constructor(
    private readonly body: ReadableBody,
    readonly request: PreparedRequest,
    readonly baseUrl: string,
  ) {}

  async *text(): AsyncGenerator<string> {
    const decoder = new TextDecoder();
    for await (const chunk of this.body) yield decoder.decode(chunk, { stream: true });
    const rest = decoder.decode();
    if (rest !== '') yield rest;
  }

  destroy(reason?: unknown): void {
    this.body.destroy(reason instanceof Error ? reason : undefined);
  }
}

async function readText(body: ReadableBody, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) {
      body.destroy();
      throw new ApiResponseError(`the API's answer is larger than ${limit} bytes`);
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Splits decoded text into lines (without their `\n` or `\r\n`); a last unterminated line counts. */
export async function* splitLines(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let pending = '';
  for await (const chunk of chunks) {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  }
  if (pending !== '') yield pending;
}

/**
 * The event-stream parser of the HTML standard: `field: value` lines, `data` lines joined with
 * `\n`, comments (`:`) ignored, an event dispatched at each blank line; CR, LF and CRLF all end a
 * line. An event cut off by the end of the stream is dropped, as the standard says.
 */
export async function* parseServerSentEvents(chunks: AsyncIterable<string>): AsyncGenerator<ServerSentEvent> {
  let pending = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  let lastId: string | undefined;
  let first = true;
  for await (let chunk of chunks) {
    if (first) {
      if (chunk.startsWith('\uFEFF')) chunk = chunk.slice(1);
      first = false;
    }
    pending += chunk;
    for (;;) {
      const match = /\r\n|\n|\r/.exec(pending);
      // A lone CR at the end may be the first half of a CRLF split across chunks: wait for more.
      if (!match || (match[0] === '\r' && match.index === pending.length - 1)) break;
      const line = pending.slice(0, match.index);
      pending = pending.slice(match.index + match[0].length);
      if (line === '') {
        if (id !== undefined) lastId = id;
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id: lastId };
        event = '';
        data = [];
        id = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  }
}

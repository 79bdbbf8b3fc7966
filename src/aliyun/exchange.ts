import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { interpretAnswer } from './answer.js';
import { AliyunApiError, AliyunTransportError } from './errors.js';
import { toTransportError } from './transport-errors.js';

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
export class Exchange implements Dispatcher.DispatchHandler {
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

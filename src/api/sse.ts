import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/** A client that reads slower than this much buffered output is cut off: memory stays bounded. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * The headers of an event stream route. A `Last-Event-ID` that is no id this API sends would
 * otherwise be ignored, and the client, believing it resumed, would get every event again.
 */
export const sseHeadersSchema = z.looseObject({
  'last-event-id': z
    .string()
    .regex(STREAM_ID, 'must be an event id as the stream sends them, such as 1738310400000-0')
    .optional()
    .describe('resume after this event: only the events that follow it'),
});

export interface SseStream {
  /** The `Last-Event-ID` the client resumed from (sseHeadersSchema refused any other). */
  readonly lastEventId: string | undefined;
  readonly ended: boolean;
  /** The reply body Fastify pipes (unserialized: a 200 schema only documents the stream). */
  readonly body: PassThrough;
  write(text: string): void;
  end(): void;
}

/**
 * The server-sent-event streams of one plugin: heartbeats, a cap on what a slow client may have
 * buffered, cleanup when the client goes away, and every open stream ended when the app closes
 * (so that closing does not wait for clients).
 */
export class SseStreams {
  private readonly open = new Set<() => void>();

  constructor(
    app: FastifyInstance,
    private readonly heartbeatMs: number,
  ) {
    app.addHook('preClose', async () => {
      for (const end of [...this.open]) end();
    });
  }

  /** Opens a stream and sets the reply's headers; `onEnd` runs once, whoever ends it. */
  start(request: FastifyRequest, reply: FastifyReply, onEnd: () => void = () => undefined): SseStream {
    const stream = new PassThrough();
    const header = request.headers['last-event-id'];
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      onEnd();
      this.open.delete(end);
      if (!stream.destroyed) stream.end();
    };
    const write = (text: string) => {
      if (ended) return;
      if (stream.writableLength > MAX_BUFFERED_BYTES) {
        request.log.warn({ url: request.url }, 'SSE client too slow; closing its stream');
        stream.destroy();
        return;
      }
      stream.write(text);
    };
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), this.heartbeatMs);
    this.open.add(end);
    // Ended by us, or destroyed by Fastify when the client goes away.
    stream.on('close', end);
    reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-accel-buffering', 'no');
    // Fastify drains the body of a HEAD instead of sending it, and never ends it: left open, the
    // stream would keep its subscription, heartbeat and polling until the change or rollout ended.
    if (request.method === 'HEAD') end();
    return {
      lastEventId: typeof header === 'string' && STREAM_ID.test(header) ? header : undefined,
      get ended() {
        return ended;
      },
      body: stream,
      write,
      end,
    };
  }
}

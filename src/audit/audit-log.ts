import type { Writable } from 'node:stream';
import type { OrchestratorKeys } from '../orchestrator/keys.js';
import type { RedisConnection } from '../orchestrator/scripts.js';
import { type AuditEvent, parseStoredEvent } from './event.js';

export interface AuditQuery {
  changeId?: string;
  ipsecServerId?: string;
  /** Inclusive bounds, epoch milliseconds of Redis's clock when the event was appended (its id). */
  from?: number;
  to?: number;
  limit?: number;
}

const PAGE = 1_000;

export interface AuditLogOptions {
  /** Entries per XRANGE and changes per pipelined read of a server's timelines. */
  pageSize?: number;
}

/**
 * Reads the audit trail. Appending happens only inside the orchestrator's Lua scripts, together
 * with the state it records; this side never writes and never trims.
 */
export class AuditLog {
  private readonly pageSize: number;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: OrchestratorKeys,
    options: AuditLogOptions = {},
  ) {
    this.pageSize = options.pageSize ?? PAGE;
  }

  /** A change's whole timeline, oldest first: the `e:<stream id>` fields of its hash. */
  async forChange(changeId: string): Promise<AuditEvent[]> {
    return timelineOf(await this.redis.hgetall(this.keys.change(changeId)));
  }

  async query(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const events: AuditEvent[] = [];
    for await (const event of this.stream(query)) {
      events.push(event);
      if (query.limit !== undefined && events.length >= query.limit) break;
    }
    return events;
  }

  /** Every matching event, oldest first, without holding them all in memory. */
  async *stream(query: AuditQuery = {}): AsyncGenerator<AuditEvent> {
    if (query.changeId) {
      for (const event of await this.forChange(query.changeId)) if (inRange(event, query)) yield event;
      return;
    }
    if (query.ipsecServerId) {
      yield* this.forServer(query.ipsecServerId, query);
      return;
    }
    let start = query.from === undefined ? '-' : String(query.from);
    const end = query.to === undefined ? '+' : String(query.to);
    for (;;) {
      const page = await this.redis.xrange(this.keys.audit, start, end, 'COUNT', this.pageSize);
      for (const [id, fields] of page) yield parseStoredEvent(id, fields[1] as string);
      if (page.length < this.pageSize) return;
      start = `(${(page[page.length - 1] as [string, string[]])[0]}`;
    }
  }

  async exportJsonl(out: Writable, query: AuditQuery = {}): Promise<number> {
    let count = 0;
    for await (const event of this.stream(query)) {
      if (!out.write(`${JSON.stringify(event)}\n`))
        await new Promise((resolve) => out.once('drain', resolve));
      count++;
    }
    return count;
  }

  /**
   * A server's events: the timelines of its changes, merged in stream order, a page of changes at
   * a time. What is held is the page and the events that may still have earlier ones behind them,
   * not the server's history: a change's first event is appended when it is submitted, so none of
   * the changes not loaded yet (the index is in submission order) can have an event earlier than
   * the next one's score, less the clock margin.
   */
  private async *forServer(ipsecServerId: string, query: AuditQuery): AsyncGenerator<AuditEvent> {
    // The index is scored by the submitter's clock, the range by Redis's: a margin keeps a change
    // submitted just after `to` by a clock running ahead; its events are then filtered exactly.
    const index = await this.redis.zrangebyscore(
      this.keys.serverChanges(ipsecServerId),
      '-inf',
      query.to === undefined ? '+inf' : query.to + CLOCK_MARGIN_MS,
      'WITHSCORES',
    );
    let pending: AuditEvent[] = [];
    for (let next = 0; next < index.length || pending.length > 0; ) {
      if (next < index.length) {
        const pipeline = this.redis.pipeline();
        const pageEnd = Math.min(next + 2 * this.pageSize, index.length);
        for (; next < pageEnd; next += 2) pipeline.hgetall(this.keys.change(index[next] as string));
        for (const [, fields] of (await pipeline.exec()) ?? []) {
          for (const event of timelineOf(fields as Record<string, string>))
            if (inRange(event, query)) pending.push(event);
        }
        pending.sort((a, b) => compareStreamIds(a.id, b.id));
      }
      const safeBefore =
        next < index.length ? Number(index[next + 1]) - CLOCK_MARGIN_MS : Number.POSITIVE_INFINITY;
      let ready = 0;
      while (ready < pending.length && streamMs((pending[ready] as AuditEvent).id) < safeBefore) ready++;
      const emitting = pending.slice(0, ready);
      pending = pending.slice(ready);
      yield* emitting;
    }
  }
}

/**
 * How far a submitter's clock may run ahead of Redis's: the server index, scored by that clock,
 * is read this far past `to`, and a server's timelines are merged this far behind the next score.
 */
const CLOCK_MARGIN_MS = 60_000;

/**
 * By the time in the event's stream id, Redis's clock when it was appended: the one the global
 * query's XRANGE uses, so a change's, a server's and the global query agree on every boundary
 * (an event's own `ts` is its writer's clock, a few ms earlier or, across machines, skewed).
 */
function inRange(event: AuditEvent, query: AuditQuery): boolean {
  const at = streamMs(event.id);
  return (query.from === undefined || at >= query.from) && (query.to === undefined || at <= query.to);
}

function streamMs(streamId: string): number {
  return Number(streamId.slice(0, streamId.indexOf('-')));
}

/** The timeline kept in a change hash (its `e:<stream id>` fields), oldest first. */
export function timelineOf(fields: Record<string, string>): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (const [name, body] of Object.entries(fields)) {
    if (name.startsWith('e:')) events.push(parseStoredEvent(name.slice(2), body));
  }
  return events.sort((a, b) => compareStreamIds(a.id, b.id));
}

export function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(Number) as [number, number];
  const [bMs, bSeq] = b.split('-').map(Number) as [number, number];
  return aMs - bMs || aSeq - bSeq;
}

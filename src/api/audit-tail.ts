import type { Redis } from 'ioredis';
import { type AuditEvent, parseStoredEvent } from '../audit/event.js';
import { IpsecFleetError } from '../errors.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';

export type AuditListener = (event: AuditEvent) => void;

export interface AuditTailOptions {
  /** How long one XREAD blocks waiting for new entries (default 5 s). */
  blockMs?: number;
  /**
   * The stream id to read after: '0' (default) replays the whole stream first, so that metrics
   * see history; '$' would only see what is appended from now on.
   */
  startId?: string;
  /** Where read failures are reported (they are retried); silent without one. */
  log?: { warn(object: object, message: string): void } | undefined;
}

type StreamReply = [key: string, entries: [id: string, fields: string[]][]][];

/** Entries per XREAD: catching up on a long stream never holds more than one page. */
const PAGE = 1_000;
/** Wait after a failed read before the next one (the connection reconnects on its own). */
const RETRY_MS = 500;

/**
 * Follows the global audit stream with one blocking connection per API process and hands every
 * event to the process's listeners: the metrics (every event) and the SSE streams (the events of
 * one change each). Reading never writes: everything it reports is derived from the audit log.
 *
 * Events are dispatched in stream order, synchronously, one page at a time. The position
 * (`lastId`) survives `close()`, so a tail that is started again resumes where it stopped instead
 * of replaying the stream. A dropped connection reconnects (ioredis resends the pending XREAD) and
 * a failed read is retried from the same position, so no event is skipped or dispatched twice.
 */
export class AuditTail {
  private readonly blockMs: number;
  private readonly log: AuditTailOptions['log'];
  private lastId: string;
  private connection: Redis | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Settles the read or pause in progress when `close()` is called (see untilStopped). */
  private wake: (() => void) | undefined;
  private readonly listeners = new Set<AuditListener>();
  private readonly subscribers = new Map<string, Set<AuditListener>>();

  constructor(
    private readonly orchestrator: Orchestrator,
    options: AuditTailOptions = {},
  ) {
    this.blockMs = options.blockMs ?? 5_000;
    this.lastId = options.startId ?? '0';
    this.log = options.log;
  }

  /** The id of the last entry dispatched ('0' before any). */
  get position(): string {
    return this.lastId;
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    const connection = this.orchestrator.redis.duplicate({
      // A blocking read must wait for a reconnect rather than fail after a few retries, and must
      // not share an auto-pipeline with anything.
      maxRetriesPerRequest: null,
      // Its XREAD blocks for longer than a producer's command may take.
      commandTimeout: undefined,
      enableAutoPipelining: false,
      connectionName: `ipsec-fleet-audit-tail-${this.orchestrator.keys.prefix.replace(/[^\w.:-]/g, '_')}`,
    });
    // Errors surface as rejected reads (handled in the loop); this only keeps them from being
    // reported as unhandled 'error' events while the connection reconnects.
    connection.on('error', () => undefined);
    this.connection = connection;
    this.loop = this.run(connection);
  }

  /** Stops reading: disconnects the blocking connection and waits for the loop to end. */
  async close(): Promise<void> {
    const loop = this.loop;
    if (!loop) return;
    this.stopping = true;
    this.wake?.();
    this.connection?.disconnect();
    this.connection = undefined;
    await loop;
    this.loop = undefined;
  }

  /** Every event of every change, in stream order. Returns the unsubscribe function. */
  onEvent(listener: AuditListener): () => void {
    // Wrapped so that the same function may be registered twice and removed once per call.
    const entry: AuditListener = (event) => listener(event);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** The events of one change, in stream order. Returns the unsubscribe function. */
  subscribe(changeId: string, listener: AuditListener): () => void {
    const entry: AuditListener = (event) => listener(event);
    let set = this.subscribers.get(changeId);
    if (!set) {
      set = new Set();
      this.subscribers.set(changeId, set);
    }
    set.add(entry);
    return () => {
      const current = this.subscribers.get(changeId);
      if (!current) return;
      current.delete(entry);
      if (current.size === 0) this.subscribers.delete(changeId);
    };
  }

  /** How many per-change subscriptions are open (for tests and diagnostics). */
  get subscriptionCount(): number {
    let count = 0;
    for (const set of this.subscribers.values()) count += set.size;
    return count;
  }

  private async run(connection: Redis): Promise<void> {
    const key = this.orchestrator.keys.audit;
    while (!this.stopping) {
      let reply: StreamReply | null | undefined;
      try {
        const read = connection.xread('COUNT', PAGE, 'BLOCK', this.blockMs, 'STREAMS', key, this.lastId);
        // A read queued while the connection is reconnecting never settles once the connection is
        // disconnected (ioredis keeps it in its offline queue), so closing does not wait for it.
        read.catch(() => undefined);
        reply = (await Promise.race([read, this.untilStopped()])) as StreamReply | null | undefined;
      } catch (error) {
        if (this.stopping) break;
        this.log?.warn({ err: error }, 'audit tail read failed; retrying');
        await this.pause(RETRY_MS);
        continue;
      }
      if (this.stopping) break;
      if (!reply) continue;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          this.lastId = id;
          this.dispatch(id, fields);
        }
      }
    }
  }

  private dispatch(id: string, fields: string[]): void {
    let event: AuditEvent;
    try {
      event = parseStoredEvent(id, fieldValue(fields, 'e'));
    } catch (error) {
      this.log?.warn({ err: error, id }, 'skipping an unreadable audit entry');
      return;
    }
    for (const listener of this.listeners) this.call(listener, event);
    const subscribers = this.subscribers.get(event.changeId);
    if (subscribers) for (const listener of [...subscribers]) this.call(listener, event);
  }

  private call(listener: AuditListener, event: AuditEvent): void {
    try {
      listener(event);
    } catch (error) {
      this.log?.warn({ err: error, id: event.id }, 'audit listener threw');
    }
  }

  /** Waits `ms`, or less if `close()` is called meanwhile. */
  private async pause(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), this.untilStopped()]);
    clearTimeout(timer);
  }

  /**
   * A promise that close() settles, new for each wait. One promise for the tail's whole life would
   * collect a reaction per Promise.race, each holding the reply it raced, for as long as the tail
   * runs: the API's heap grew with every audit event.
   */
  private untilStopped(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
    });
  }
}

function fieldValue(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] as string;
  throw new IpsecFleetError('AUDIT_ENTRY_MALFORMED', `the entry has no \`${name}\` field`);
}

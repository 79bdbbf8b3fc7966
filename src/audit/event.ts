import { z } from 'zod';

export const AUDIT_EVENT_TYPES = [
  'submitted',
  'approval',
  'approved',
  'running',
  'dry_run_passed',
  'applied',
  'backoff',
  'succeeded',
  'rejected',
  'failed',
  'cancelled',
  'expired',
] as const;

/**
 * One audit event: one state transition (or step) of one change. `id` is the Redis stream entry
 * id, which orders events and carries their time to the millisecond.
 */
export const auditEventSchema = z.looseObject({
  id: z.string(),
  ts: z.number(),
  actor: z.string(),
  type: z.string(),
  changeId: z.string(),
  ipsecServerId: z.string(),
  regionId: z.string(),
  attempt: z.number(),
  cloudRequestId: z.string().optional(),
  code: z.string().optional(),
  delayMs: z.number().optional(),
  details: z.unknown().optional(),
});

export type AuditEvent = z.infer<typeof auditEventSchema>;

/** Events are stored as JSON without their id, which the stream (or the timeline prefix) carries. */
export function parseStoredEvent(id: string, body: string): AuditEvent {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  // cjson encodes an empty Lua table as {}: normalise an empty details object away.
  if (parsed.details && typeof parsed.details === 'object' && Object.keys(parsed.details).length === 0) {
    delete parsed.details;
  }
  return { id, ...parsed } as AuditEvent;
}

export interface AuditContext {
  actor: string;
  changeId: string;
  ipsecServerId: string;
  regionId: string;
  attempt: number;
}

/** Serialises one event for a transition script to append (the script adds the stream id). */
export function encodeEvent(
  context: AuditContext,
  type: string,
  extra: {
    cloudRequestId?: string | undefined;
    code?: string | undefined;
    delayMs?: number;
    details?: unknown;
  } = {},
  ts: number = Date.now(),
): string {
  const event: Record<string, unknown> = { ts, ...context, type };
  if (extra.cloudRequestId) event.cloudRequestId = extra.cloudRequestId;
  if (extra.code) event.code = extra.code;
  if (extra.delayMs !== undefined) event.delayMs = extra.delayMs;
  if (extra.details !== undefined) event.details = extra.details;
  return JSON.stringify(event);
}

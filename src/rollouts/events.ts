import { type AuditContext, encodeEvent } from '../audit/event.js';

/** A rollout's event types: prefixed, so none reads as a change's state in audit consumers. */
export const ROLLOUT_EVENT_TYPES = [
  'rollout_created',
  'rollout_planned',
  'rollout_awaiting_approval',
  'rollout_approval',
  'rollout_approved',
  'rollout_rejected',
  'rollout_expired',
  'rollout_started',
  'rollout_paused',
  'rollout_resumed',
  'rollout_halted',
  'rollout_completed',
  'rollout_cancelled',
] as const;

/**
 * A rollout's audit event: the change event format, with the rollout id as subject (`changeId`
 * and `rolloutId`) and no server, so audit readers and exports take it as they are.
 */
export function encodeRolloutEvent(
  rolloutId: string,
  actor: string,
  type: string,
  details: Record<string, unknown> | undefined,
  now: number,
): string {
  const context = { actor, changeId: rolloutId, ipsecServerId: '', regionId: '', attempt: 0, rolloutId };
  return encodeEvent(context as AuditContext, type, details ? { details } : {}, now);
}

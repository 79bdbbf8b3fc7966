import { z } from 'zod';
import { auditEventSchema } from '../audit/event.js';
import { PSK_FINGERPRINT_PATTERN } from '../ipsec/psk.js';
import { CHANGE_STATES } from '../orchestrator/change.js';

/**
 * Response schemas shared by the routes, documented in the OpenAPI document. They also guard what
 * leaves the process: a Psk anywhere in a change (params, before, after) or a diff must be a
 * fingerprint, or the response fails to serialize (a 500) instead of showing a key.
 */

/**
 * A label as made now, or one an earlier version stored (an unkeyed `sha256:<12 hex>`): a change
 * recorded before the upgrade must still be readable, not a 500.
 */
const isPskLabel = (value: string) =>
  PSK_FINGERPRINT_PATTERN.test(value) || /^sha256:[0-9a-f]{12}$/.test(value);

export const pskFingerprintSchema = z
  .string()
  .refine(isPskLabel, 'a Psk leaves the API only as its fingerprint')
  .describe("the Psk as a fingerprint, hmac:<16 hex>, keyed by the deployment's secret key");

/** Params, or a server's config: any fields, the Psk only as a fingerprint. */
const configSchema = z.looseObject({ Psk: pskFingerprintSchema.optional() });

export const changeSchema = z
  .object({
    id: z.string(),
    state: z.enum(CHANGE_STATES),
    step: z.string().optional(),
    ipsecServerId: z.string(),
    regionId: z.string(),
    params: configSchema.describe('the mutable UpdateIpsecServer params, Psk as a fingerprint'),
    actor: z.string().describe('the name of the token that submitted the change'),
    note: z.string().optional(),
    clientToken: z.string().describe('the ClientToken of every apply of this change'),
    profile: z.string().optional().describe('the credential profile the change runs with'),
    runs: z.number().int(),
    lastCode: z.string().optional(),
    nextAt: z.number().optional().describe('epoch ms of the next attempt while backing off'),
    createdAt: z.number(),
    updatedAt: z.number(),
    finishedAt: z.number().optional(),
    before: configSchema.optional().describe('the server as read before the dry run'),
    after: configSchema.optional().describe('the server as verified after the apply'),
    approval: z
      .object({
        required: z.number().int().describe('distinct approvals the change needs'),
        approvers: z.array(z.string()).describe('who approved it so far (never its submitter)'),
        expiresAt: z.number().describe('epoch ms at which it expires unless approved'),
        reason: z.string().optional().describe('why it was rejected'),
      })
      .optional()
      .describe('present when the approval policy held the change in awaiting_approval'),
  })
  .meta({ id: 'Change' });

/**
 * A whole number in a query string, checked by `rule` (the library's own rule for it). Any number
 * reaches the rule, so `limit=99999999999` is told its range, not that it is no whole number.
 */
export function queryInt<T extends z.ZodType<number, number>>(rule: T) {
  return (
    z
      .string()
      .regex(/^-?\d+$/, 'must be a whole number')
      // Too many digits for a double is still a number out of range, not "must be a number".
      .transform((text) => Math.max(-Number.MAX_VALUE, Math.min(Number(text), Number.MAX_VALUE)))
      .pipe(rule)
  );
}

/**
 * The query of a route that takes none. A parameter there is a mistake (`?limit=5` on a lane that
 * has no limit), named like an unknown field of GET /v1/changes rather than silently ignored.
 */
export const noQuerySchema = z.strictObject({});

export const auditEventResponseSchema = auditEventSchema.meta({ id: 'AuditEvent' });

const fieldValueSchema = z.union([z.string(), z.number(), z.boolean()]);

export const fieldChangeSchema = z
  .object({
    field: z.string().describe('`LocalSubnet`, or `IkeConfig.IkeLifetime` inside a config'),
    from: fieldValueSchema.optional().describe("the server's value; absent when it reports none"),
    to: fieldValueSchema,
  })
  .refine(
    (change) =>
      change.field !== 'Psk' ||
      ((change.from === undefined || isPskLabel(String(change.from))) && isPskLabel(String(change.to))),
    'a Psk leaves the API only as its fingerprint',
  )
  .meta({ id: 'FieldChange' });

export const laneEntrySchema = z
  .object({
    position: z.number().int().describe('1 for the head of the lane'),
    id: z.string(),
    state: z.string(),
    step: z.string().optional(),
    actor: z.string(),
    createdAt: z.number(),
  })
  .meta({ id: 'LaneEntry' });

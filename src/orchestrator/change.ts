import { z } from 'zod';
import { boundedText, stringField } from '../ipsec/field-rules.js';
import { mutableParamsSchema, regionIdSchema } from '../ipsec/update-params.js';
import { pageQueryShape } from '../page-query.js';

export const CHANGE_STATES = [
  'awaiting_approval',
  'queued',
  'running',
  'backing_off',
  'succeeded',
  'rejected',
  'failed',
  'cancelled',
  'expired',
] as const;
export type ChangeState = (typeof CHANGE_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<ChangeState> = new Set([
  'succeeded',
  'rejected',
  'failed',
  'cancelled',
  'expired',
]);
/**
 * States a change can be cancelled from: it is waiting, not talking to the cloud. One backing off
 * after an apply that may have taken effect is refused all the same (finish.lua): only a run that
 * retries and verifies that apply can tell how it ended.
 */
export const CANCELLABLE_STATES: readonly ChangeState[] = ['awaiting_approval', 'queued', 'backing_off'];

/** A decision's reason (a rejection): 1 to 1024 characters. */
export const approvalReasonSchema = boundedText(1024);

/** An IPsec server id as the cloud writes them; also the `server` filter of a listing. */
const ipsecServerIdSchema = stringField().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/,
  'must be an IPsec server id such as iss-bp1...',
);

/** A credential profile's name (never its secrets). */
export const profileNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, ".", "-" or "_"');

/** A submission, as the library, the HTTP API and the CLI accept it. */
export const changeSubmissionSchema = z.strictObject({
  ipsecServerId: ipsecServerIdSchema,
  regionId: regionIdSchema,
  params: mutableParamsSchema,
  actor: boundedText(128),
  note: boundedText(1024).optional(),
  idempotencyKey: boundedText(256).optional(),
  /** The credential profile to change it with (`default` unless named); checked by the worker. */
  profile: profileNameSchema.optional(),
});

export type ChangeSubmission = z.output<typeof changeSubmissionSchema>;
export type ChangeSubmissionInput = z.input<typeof changeSubmissionSchema>;

/** What anyone may see of a change: the Psk only as a fingerprint. */
export interface ChangeView {
  id: string;
  state: ChangeState;
  step: string | undefined;
  ipsecServerId: string;
  regionId: string;
  params: Record<string, unknown>;
  actor: string;
  note: string | undefined;
  clientToken: string;
  /** The credential profile it runs with. */
  profile: string;
  runs: number;
  lastCode: string | undefined;
  nextAt: number | undefined;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | undefined;
  before: Record<string, unknown> | undefined;
  after: Record<string, unknown> | undefined;
  /** Set when the approval policy caught the change: what it needs, who approved, until when. */
  approval:
    | { required: number; approvers: string[]; expiresAt: number; reason: string | undefined }
    | undefined;
}

export const listChangesQuerySchema = z.strictObject({
  server: ipsecServerIdSchema.optional(),
  state: z.enum(CHANGE_STATES).optional(),
  ...pageQueryShape,
});
export type ListChangesQuery = z.input<typeof listChangesQuerySchema>;

import { z } from 'zod';
import { boundedText } from '../ipsec/field-rules.js';
import { type MutableParams, mutableParamsSchema, regionIdSchema } from '../ipsec/update-params.js';
import { profileNameSchema } from '../orchestrator/change.js';

/**
 * A rollout: one params patch carried to many servers, planned (dry run + read of each), approved
 * by people other than its submitter, then run as ordinary changes under rate control (OOS loops'
 * Batch/Concurrency/MaxErrors/BatchPauseOption, AWS SSM's ramp and error threshold).
 */

export const ROLLOUT_STATES = [
  'planning',
  'planned',
  'awaiting_approval',
  'approved',
  'running',
  'paused',
  'completed',
  'halted',
  'cancelled',
  'rejected',
  'expired',
] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export const TERMINAL_ROLLOUT_STATES: ReadonlySet<RolloutState> = new Set([
  'planned',
  'completed',
  'halted',
  'cancelled',
  'rejected',
  'expired',
]);

export const MAX_TARGETS = 10_000;
const DAY_MS = 24 * 3_600_000;

const text = boundedText;

/** `N%` with N from `min` to 100. */
const percent = (min: number) =>
  z
    .string()
    .regex(/^\d{1,3}%$/, 'must be a whole number or a percentage such as 25%')
    .refine(
      (value) => {
        const n = Number(value.slice(0, -1));
        return n >= min && n <= 100;
      },
      { error: `percentage must be from ${min}% to 100%` },
    );

/**
 * Said when a value is of neither form (`1.5`, `true`): each form's own complaint alone would be
 * half the rule ("must be a whole number", "must be a string").
 */
const COUNT_OR_PERCENT_RULE = { error: 'must be a whole number or a percentage such as 25%' };

/** A count of targets (at least 1) or a share of those the rollout runs (`N%`, 1–100; RUN_VERDICTS). */
export const countOrPercentSchema = z.union(
  [z.number().int('must be a whole number').min(1, 'must be at least 1'), percent(1)],
  COUNT_OR_PERCENT_RULE,
);
export type CountOrPercent = z.infer<typeof countOrPercentSchema>;

/** An error threshold: a count (0 or more) or a share (`N%`, 0–100). */
export const thresholdSchema = z.union(
  [z.number().int('must be a whole number').min(0, 'must not be negative'), percent(0)],
  COUNT_OR_PERCENT_RULE,
);

export type Strategy = { batches: CountOrPercent[] } | { concurrency: CountOrPercent };

const STRATEGY_RULE = 'must be { batches: [...] } or { concurrency: N | "N%" }';

/**
 * `{ batches }` or `{ concurrency }`, told apart by the key given. Not a union of the two: zod
 * answers a failed union with the branch that failed least, so a bad concurrency came back as
 * "concurrency: unknown field" (from the batches branch), or as the union's summary without the
 * rule that was broken.
 */
export const strategySchema = z
  .strictObject(
    {
      /** Batch sizes in order; the last one repeats until every target is covered. */
      batches: z.array(countOrPercentSchema).min(1).max(1_000).optional(),
      /** In flight at most this many, ramping up 1, 2, 4, ... as changes finish. */
      concurrency: countOrPercentSchema.optional(),
    },
    { error: STRATEGY_RULE },
  )
  .refine((strategy) => strategy.batches === undefined || strategy.concurrency === undefined, {
    error: `${STRATEGY_RULE}, not both`,
  })
  .transform(
    (strategy): Strategy =>
      strategy.concurrency === undefined
        ? { batches: strategy.batches ?? ['100%'] }
        : { concurrency: strategy.concurrency },
  )
  .describe('batches (default ["100%"]) or concurrency, not both');

const serverIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be an IPsec server id such as iss-bp1...');

export const rolloutTargetSchema = z.strictObject({
  ipsecServerId: serverIdSchema,
  regionId: regionIdSchema,
  /** Overrides the rollout's params for this target (IkeConfig/IpsecConfig merge key by key). */
  params: mutableParamsSchema.optional(),
  /** The credential profile of this target's account (`default` unless named). */
  profile: profileNameSchema.optional(),
});

/**
 * Targets found by the plan rather than listed: every IPsec server ListIpsecServers shows in the
 * regions (through `profile`), narrowed to the VPN gateways and to names matching `namePattern`.
 * The pattern is a glob over the whole IpsecServerName, case-sensitive: `*` is any run of
 * characters (empty too), `?` exactly one; nothing else is special (globMatches, whose work is
 * bounded by the two lengths whatever the pattern).
 */
export const rolloutSelectorSchema = z.strictObject({
  regions: z.array(regionIdSchema).min(1).max(50),
  vpnGatewayIds: z
    .array(
      z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be a VPN gateway id such as vpn-bp1...'),
    )
    .min(1)
    .max(100)
    .optional(),
  namePattern: z.string().min(1).max(128).optional(),
  profile: profileNameSchema.optional(),
});
export type RolloutSelector = z.infer<typeof rolloutSelectorSchema>;

/** The fields of a rollout; rolloutSpecSchema (rollout-spec.ts) takes the same but two. */
const rolloutShape = {
  /** The servers, listed; or `selector`, resolved when the rollout is planned (exactly one). */
  targets: z.array(rolloutTargetSchema).min(1).max(MAX_TARGETS).optional(),
  selector: rolloutSelectorSchema.optional(),
  params: mutableParamsSchema.optional(),
  strategy: strategySchema.default({ batches: ['100%'] }),
  maxErrors: thresholdSchema.default(0),
  /** Wait for resume after the first batch, or after every batch (batches strategy only). */
  pause: z.enum(['none', 'first', 'every']).default('none'),
  /** Wait this long after a batch before the next one starts (batches strategy only). */
  bakeMs: z.number().int().min(0).max(DAY_MS).default(0),
  /**
   * Start at most this many changes in any 60-second window (a sliding window, either strategy):
   * a batch bigger than that is started over several windows.
   */
  maxChangesPerMinute: z.number().int().min(1).max(MAX_TARGETS).optional(),
  approvals: z
    .strictObject({
      required: z.number().int().min(1).max(10).default(1),
      expiresMs: z
        .number()
        .int()
        .min(1)
        .max(30 * DAY_MS)
        .default(DAY_MS),
    })
    .default({ required: 1, expiresMs: DAY_MS }),
  /** Stop after the plan (state `planned`). */
  planOnly: z.boolean().default(false),
  actor: text(128),
  note: text(1024).optional(),
  /** Internal: the rollout this one undoes. */
  rollbackOf: z.string().min(1).optional(),
};

/** What the cross-field rules look at: the same in a spec and in the library's input. */
interface CrossFieldInput {
  targets?: readonly { ipsecServerId: string; params?: MutableParams | undefined }[] | undefined;
  selector?: RolloutSelector | undefined;
  params?: MutableParams | undefined;
  strategy: Strategy;
  pause: 'none' | 'first' | 'every';
  bakeMs: number;
}

/**
 * The rules between fields (exactly one of targets and selector, params required somewhere, no
 * target twice, pause and bake with batches only), shared by rolloutInputSchema and
 * rolloutSpecSchema so that both stay one set of rules, each schema checking its input once.
 */
export function checkCrossFieldRules(input: CrossFieldInput, ctx: z.RefinementCtx): void {
  // The controller pauses and bakes between batches: under concurrency either setting would be
  // accepted and then do nothing, while its author counts on it.
  if ('concurrency' in input.strategy) {
    if (input.pause !== 'none') {
      ctx.addIssue({
        code: 'custom',
        path: ['pause'],
        message:
          'applies to the batches strategy only (a concurrency strategy has no batches to pause after)',
      });
    }
    if (input.bakeMs > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['bakeMs'],
        message:
          'applies to the batches strategy only (a concurrency strategy has no batches to wait between)',
      });
    }
  }
  if ((input.targets === undefined) === (input.selector === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: 'give exactly one of targets (a list) and selector (regions, vpnGatewayIds, namePattern)',
    });
  }
  if (input.selector && !input.params) {
    ctx.addIssue({
      code: 'custom',
      path: ['params'],
      message: 'is required with a selector (its targets have no params of their own)',
    });
  }
  const seen = new Set<string>();
  (input.targets ?? []).forEach((target, index) => {
    if (!input.params && !target.params) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets', index, 'params'],
        message: 'is required when the rollout sets no params for all targets',
      });
    }
    if (seen.has(target.ipsecServerId)) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets', index, 'ipsecServerId'],
        message: `${target.ipsecServerId} is listed twice`,
      });
    }
    seen.add(target.ipsecServerId);
  });
}

export const rolloutInputSchema = z.strictObject(rolloutShape).superRefine(checkCrossFieldRules);

export type RolloutInput = z.input<typeof rolloutInputSchema>;
export type RolloutSpec = z.output<typeof rolloutInputSchema>;

/** What is stored of the spec in the rollout hash (targets and params apart). */
export interface RolloutSettings {
  strategy: Strategy;
  maxErrors: number | string;
  pause: 'none' | 'first' | 'every';
  bakeMs: number;
  /** Changes started in any window of a minute, at most (absent: no such limit). */
  maxChangesPerMinute?: number | undefined;
  approvals: { required: number; expiresMs: number };
  planOnly: boolean;
}

/** The rollout params with a target's own on top; IkeConfig/IpsecConfig merge key by key. */
export function mergeParams(
  common: MutableParams | undefined,
  own: MutableParams | undefined,
): MutableParams {
  const merged: Record<string, unknown> = { ...common, ...own };
  for (const nested of ['IkeConfig', 'IpsecConfig'] as const) {
    if (common?.[nested] && own?.[nested]) merged[nested] = { ...common[nested], ...own[nested] };
  }
  return merged as MutableParams;
}

export type PlanKind = 'would-change' | 'no-op' | 'rejected' | 'blocked' | 'unknown';

/**
 * Plan verdicts whose targets are run: those the plan found would change, and those it could not
 * judge (busy, throttled or unreachable while it looked), which the pipeline's own dry run judges.
 */
export const RUN_VERDICTS: ReadonlySet<PlanKind> = new Set<PlanKind>(['would-change', 'unknown']);

/** The plan's verdict on one target. */
export interface TargetPlan {
  index: number;
  ipsecServerId: string;
  regionId: string;
  /** Set when the target names a profile other than `default`. */
  profile?: string;
  kind: PlanKind;
  /** The cloud's code for rejected, blocked and unknown. */
  code?: string;
  message?: string;
  /** Field by field, for would-change (Psk as fingerprints). */
  diff?: { field: string; from: unknown; to: unknown }[];
}

export interface RolloutProgress {
  /** Targets the plan found would change or could not judge: what the rollout runs (RUN_VERDICTS). */
  total: number;
  submitted: number;
  inFlight: number;
  succeeded: number;
  errors: number;
  /** Changes by state, as last seen by the controller. */
  byState: Record<string, number>;
  /** Finished changes over total, 0–100. */
  percent: number;
  /** 1-based; 0 before the first batch. */
  currentBatch: number;
  batchCount: number | undefined;
}

export interface RolloutView {
  id: string;
  state: RolloutState;
  actor: string;
  note: string | undefined;
  params: Record<string, unknown> | undefined;
  settings: RolloutSettings;
  /** Targets listed, or found by the selector once planned (0 until then). */
  targetCount: number;
  /** Set when the targets are chosen by a selector rather than listed. */
  selector: RolloutSelector | undefined;
  plan: Record<PlanKind, number> | undefined;
  approvalsRequired: number;
  approvals: number;
  expiresAt: number | undefined;
  rollbackOf: string | undefined;
  reason: string | undefined;
  progress: RolloutProgress;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | undefined;
}

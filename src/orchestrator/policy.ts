import { z } from 'zod';
import { AliyunApiError } from '../aliyun/errors.js';

/**
 * The longest delay setTimeout honours (2^31 - 1 ms, about 24.8 days). Node turns a longer one
 * into 1 ms with a TimeoutOverflowWarning, so an over-long timeout would make every call time out
 * at once; every millisecond setting is capped here instead.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Shared by the policy, the environment and the flags, so every entry point states the cap alike. */
export function millisecondsSchema<T extends { max(value: number, message?: string): T }>(base: T): T {
  return base.max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} (the longest timer Node.js honours)`);
}

const millis = millisecondsSchema(z.number().int().min(0));

const backoffSchema = z
  .strictObject({
    baseMs: millis,
    maxMs: millis,
    /** Give up once the change has backed off for this long in this class (ms since the first). */
    giveUpAfterMs: millis.optional(),
    /** Give up after this many failed attempts in this class. */
    maxAttempts: z.number().int().positive().optional(),
  })
  // A cap under the base (or of 0) would quietly turn every delay into the 50 ms floor.
  .refine((rule) => rule.maxMs > 0 && rule.maxMs >= rule.baseMs, {
    path: ['maxMs'],
    message: 'must be positive and at least baseMs',
    // Compared only once each field passed its own rules: one mistake, one message.
    when: (payload) => payload.issues.length === 0,
  });

/** What makes a change wait for approval: a Psk in its params, EffectImmediately=true, or anything. */
export const APPROVAL_TRIGGERS = ['Psk', 'EffectImmediately', 'always'] as const;
export type ApprovalTrigger = (typeof APPROVAL_TRIGGERS)[number];

/**
 * Which changes wait in `awaiting_approval` before they join their lane, how many distinct
 * approvers (never the submitter) they need, and how long they may wait before they expire.
 */
export const approvalPolicySchema = z.strictObject({
  /** Default: none (no change waits for approval). */
  when: z.array(z.enum(APPROVAL_TRIGGERS)).default([]),
  required: z.number().int().min(1).max(16).default(1),
  // Not a timer (a delayed job's timestamp in Redis): no cap at Node's longest timer.
  expiresMs: z
    .number()
    .int()
    .min(1)
    .default(24 * 3_600_000),
});
export type ApprovalPolicy = z.output<typeof approvalPolicySchema>;

/**
 * How the pipeline answers each class of cloud error (DESIGN.md's table); every number can be
 * set per deployment (IPSEC_FLEET_POLICY, JSON) and tests set short ones.
 */
export const pipelinePolicySchema = z.strictObject({
  busy: backoffSchema.default({ baseMs: 2_000, maxMs: 60_000, giveUpAfterMs: 15 * 60_000 }),
  accountLocked: backoffSchema.default({
    baseMs: 5 * 60_000,
    maxMs: 60 * 60_000,
    giveUpAfterMs: 24 * 3_600_000,
  }),
  transient: backoffSchema.default({ baseMs: 1_000, maxMs: 30_000, maxAttempts: 8 }),
  /** Throttled calls are not attempts: a short pause, never a give-up. */
  throttled: backoffSchema.default({ baseMs: 500, maxMs: 5_000 }),
  /** Server lease: renewed while held, expiring when its worker dies. */
  leaseMs: millis.min(1_000).default(30_000),
  /** Reads after an apply until the server shows the requested config. */
  verifyAttempts: z.number().int().positive().default(5),
  verifyIntervalMs: millis.default(1_000),
  /** Deadline of one cloud call. */
  callTimeoutMs: millisecondsSchema(z.number().int().positive()).default(10_000),
  /** How long an idempotency key of a submission is remembered. */
  // Not a timer (a key's TTL in Redis): no cap at Node's longest timer.
  idempotencyRetentionMs: z
    .number()
    .int()
    .positive()
    .default(24 * 3_600_000),
  /**
   * Cloud API calls per second per access key and action, shared by every worker on every machine
   * (a token bucket in Redis, rate-limiter.ts). Unset: no limiter, and no Redis command for it.
   */
  apiQps: z.number().positive().optional(),
  /**
   * Calls the limiter lets go at once after a quiet spell; default half of apiQps (at least 1).
   * Below the cloud's own burst (which is its QPS), the difference absorbs the spread of network
   * latency between calls: apiQps equal to the quota then meets no throttling.
   */
  apiBurst: z.number().min(1).optional(),
  /** Changes that wait for approval before they join their lane (default: none). */
  approval: approvalPolicySchema.default({ when: [], required: 1, expiresMs: 24 * 3_600_000 }),
});

export type PipelinePolicy = z.output<typeof pipelinePolicySchema>;
export type PipelinePolicyInput = z.input<typeof pipelinePolicySchema>;
export type BackoffRule = z.output<typeof backoffSchema>;

/**
 * Full-jitter exponential backoff: a uniformly random delay up to min(max, base * 2^(n-1)), which
 * spreads retries of many changes hitting the same busy gateway or account.
 */
export function backoffDelay(rule: BackoffRule, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(rule.maxMs, rule.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

/**
 * The wait before a call the cloud refused goes out again: the wait the cloud asked for when it
 * named one (a throttled answer's x-acs-retry-after), bounded by the rule's max as the official
 * SDK's retry bounds it, else the rule's backoff. Sooner than asked is throttled again; later
 * leaves quota unused.
 */
export function retryDelay(
  rule: BackoffRule,
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  const asked = error instanceof AliyunApiError ? error.retryAfterMs : undefined;
  return asked === undefined ? backoffDelay(rule, attempt, random) : Math.min(asked, rule.maxMs);
}

/** Whether the approval policy catches a change with these params. */
export function needsApproval(policy: ApprovalPolicy, params: Record<string, unknown>): boolean {
  return policy.when.some(
    (trigger) =>
      trigger === 'always' ||
      (trigger === 'Psk' && params.Psk !== undefined) ||
      (trigger === 'EffectImmediately' && params.EffectImmediately === true),
  );
}

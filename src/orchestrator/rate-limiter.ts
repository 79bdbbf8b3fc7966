import { AliyunTransportError } from '../aliyun/errors.js';
import type { CallOptions, RpcCaller, RpcParams } from '../aliyun/types.js';
import { classifyError } from '../ipsec/classify-error.js';
import { sleep } from '../sleep.js';
import type { OrchestratorKeys } from './keys.js';
import type { PipelinePolicy } from './policy.js';
import type { Scripts } from './scripts.js';

export interface RateLimit {
  /** Calls per second per access key and action. */
  qps: number;
  /** Calls let go at once after a quiet spell; default half of qps, at least 1. */
  burst?: number | undefined;
}

/**
 * The cloud API rate, shared by every worker on every machine: one token bucket per access key
 * and action in Redis (rate-take.lua), as the cloud keeps its own quotas.
 *
 * - Time is Redis's (TIME inside the script), not the callers': workers on machines whose clocks
 *   disagree still refill one bucket on one timeline.
 * - A token is reserved, not polled for: one script call per cloud call, which says how long to
 *   wait for the token the caller now owns, so waiting costs Redis nothing however many wait, and
 *   callers go in the order they asked.
 * - The burst is below the cloud's (which equals its QPS): calls leave at the granted times but
 *   reach the cloud with different latencies, and (quota burst - our burst) / qps seconds of such
 *   spread is absorbed, half a second by default. At a quota of 1/s there is no room for any.
 * - A throttled answer puts the bucket into debt (penalize), which every later caller waits out.
 */
export class RateLimiter {
  readonly qps: number;
  readonly burst: number;

  constructor(
    private readonly scripts: Scripts,
    private readonly keys: OrchestratorKeys,
    limit: RateLimit,
  ) {
    if (!(limit.qps > 0)) throw new RangeError(`qps must be > 0, not ${limit.qps}`);
    this.qps = limit.qps;
    this.burst = Math.max(1, limit.burst ?? limit.qps / 2);
  }

  /** Milliseconds between two tokens. */
  get intervalMs(): number {
    return 1_000 / this.qps;
  }

  /**
   * Resolves when the caller may send one `action` call with `accessKeyId` (to the milliseconds it
   * waited); rejects with the signal's reason if it is aborted first (the reserved token is spent).
   */
  async acquire(accessKeyId: string, action: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const waitMs = Number(
      await this.scripts.run('rate-take', [this.keys.rate(accessKeyId, action)], [this.qps, this.burst]),
    );
    if (waitMs > 0) await sleep(waitMs, signal);
    return waitMs;
  }

  /** After the cloud throttled a call: everyone's next tokens come `ms` later (default: one token's worth). */
  async penalize(accessKeyId: string, action: string, ms: number = this.intervalMs): Promise<void> {
    await this.scripts.run(
      'rate-penalize',
      [this.keys.rate(accessKeyId, action)],
      [this.qps, this.burst, Math.max(1, Math.ceil(ms))],
    );
  }
}

/**
 * A cloud client whose every call first takes a token of its (access key, action) bucket, and
 * whose throttled answers slow that bucket for every worker. Errors are the inner client's: an
 * abort while waiting for a token is the TRANSPORT_ABORTED the client throws for an abort.
 */
export class RateLimitedCaller implements RpcCaller {
  constructor(
    private readonly inner: RpcCaller,
    private readonly limiter: RateLimiter,
    private readonly accessKeyId: string,
  ) {}

  async call<T = Record<string, unknown>>(
    action: string,
    params: RpcParams,
    options?: CallOptions,
  ): Promise<T> {
    const signal = options?.signal;
    try {
      await this.limiter.acquire(this.accessKeyId, action, signal);
    } catch (error) {
      if (!signal?.aborted) throw error;
      throw new AliyunTransportError('TRANSPORT_ABORTED', `${action}: aborted while waiting for its rate`, {
        cause: signal.reason,
      });
    }
    try {
      return await this.inner.call<T>(action, params, options);
    } catch (error) {
      if (classifyError(error) === 'throttled') {
        // The throttled answer is what the caller must see; a bucket left unslowed only costs speed.
        await this.limiter.penalize(this.accessKeyId, action).catch(() => undefined);
      }
      throw error;
    }
  }
}

/** The shared limiter a deployment's policy asks for (`apiQps`), or none: then no Redis work at all. */
export function rateLimiterFor(
  policy: PipelinePolicy,
  scripts: Scripts,
  keys: OrchestratorKeys,
): RateLimiter | undefined {
  return policy.apiQps === undefined
    ? undefined
    : new RateLimiter(scripts, keys, { qps: policy.apiQps, burst: policy.apiBurst });
}

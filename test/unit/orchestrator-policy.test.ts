import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { AliyunApiError } from '../../src/aliyun/errors.js';
import { clientTokenSchema } from '../../src/ipsec/update-params.js';
import { clientTokenFor, newChangeId } from '../../src/orchestrator/ids.js';
import { OrchestratorKeys } from '../../src/orchestrator/keys.js';
import { Orchestrator, startChangeWorker } from '../../src/orchestrator/orchestrator.js';
import {
  backoffDelay,
  MAX_TIMER_MS,
  type PipelinePolicyInput,
  pipelinePolicySchema,
  retryDelay,
} from '../../src/orchestrator/policy.js';
import { InvalidInputError } from '../../src/validation.js';

describe('backoffDelay', () => {
  const rule = { baseMs: 2_000, maxMs: 60_000 };

  it('is full jitter: from 0 up to base * 2^(attempt-1), capped at max', () => {
    expect(backoffDelay(rule, 1, () => 0.999999)).toBe(2_000);
    expect(backoffDelay(rule, 3, () => 0.999999)).toBe(8_000);
    expect(backoffDelay(rule, 10, () => 0.999999)).toBe(60_000);
    expect(backoffDelay(rule, 3, () => 0)).toBe(0);
    expect(backoffDelay(rule, 3, () => 0.5)).toBe(4_000);
  });
});

describe('retryDelay', () => {
  const rule = { baseMs: 500, maxMs: 5_000 };
  const throttled = (retryAfterMs?: number) =>
    new AliyunApiError({ code: 'Throttling.User', message: 'flow control', httpStatus: 400, retryAfterMs });

  it('waits as long as the cloud asked, whatever the attempt and the draw', () => {
    expect(retryDelay(rule, 1, throttled(750), () => 0)).toBe(750);
    expect(retryDelay(rule, 9, throttled(750), () => 0.999999)).toBe(750);
    expect(retryDelay(rule, 1, throttled(0), () => 0.999999)).toBe(0);
  });

  it("never longer than the rule's max, as the official SDK bounds it", () => {
    expect(retryDelay(rule, 1, throttled(120_000), () => 0)).toBe(5_000);
  });

  it('is the backoff when the answer asked for nothing, or was no answer of the cloud', () => {
    expect(retryDelay(rule, 2, throttled(), () => 0.5)).toBe(500);
    expect(retryDelay(rule, 2, new Error('reset'), () => 0.999999)).toBe(1_000);
  });
});

describe('pipelinePolicySchema', () => {
  it("defaults to DESIGN.md's table", () => {
    const policy = pipelinePolicySchema.parse({});
    expect(policy.busy).toEqual({ baseMs: 2_000, maxMs: 60_000, giveUpAfterMs: 900_000 });
    expect(policy.accountLocked).toEqual({ baseMs: 300_000, maxMs: 3_600_000, giveUpAfterMs: 86_400_000 });
    expect(policy.transient).toEqual({ baseMs: 1_000, maxMs: 30_000, maxAttempts: 8 });
  });

  it('refuses a cap under the base, or of 0, which would make every delay the 50 ms floor', () => {
    for (const busy of [
      { baseMs: 2_000, maxMs: 1_000 },
      { baseMs: 0, maxMs: 0 },
    ]) {
      const result = pipelinePolicySchema.safeParse({ busy });
      expect(result.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
        ['busy.maxMs', 'must be positive and at least baseMs'],
      ]);
    }
    expect(pipelinePolicySchema.safeParse({ busy: { baseMs: 0, maxMs: 1 } }).success).toBe(true);
  });

  it('names a bad field', () => {
    const result = pipelinePolicySchema.safeParse({ busy: { baseMs: -1, maxMs: 10 } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['busy', 'baseMs']);
  });

  // A longer delay becomes Node's 1 ms timer (TimeoutOverflowWarning): every call would time out.
  const millisecondFields: Array<[string, (ms: number) => PipelinePolicyInput]> = [
    ['callTimeoutMs', (ms) => ({ callTimeoutMs: ms })],
    ['verifyIntervalMs', (ms) => ({ verifyIntervalMs: ms })],
    ['leaseMs', (ms) => ({ leaseMs: ms })],
    ...(['busy', 'accountLocked', 'transient', 'throttled'] as const).flatMap(
      (kind) =>
        [
          [`${kind}.baseMs`, (ms: number) => ({ [kind]: { baseMs: ms, maxMs: MAX_TIMER_MS } })],
          [`${kind}.maxMs`, (ms: number) => ({ [kind]: { baseMs: 1_000, maxMs: ms } })],
          [
            `${kind}.giveUpAfterMs`,
            (ms: number) => ({ [kind]: { baseMs: 1_000, maxMs: 1_000, giveUpAfterMs: ms } }),
          ],
        ] as Array<[string, (ms: number) => PipelinePolicyInput]>,
    ),
  ];

  it.each(millisecondFields)('caps %s at the longest timer Node.js honours', (field, policyWith) => {
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
    expect(pipelinePolicySchema.safeParse(policyWith(MAX_TIMER_MS)).success).toBe(true);
    const result = pipelinePolicySchema.safeParse(policyWith(MAX_TIMER_MS + 1));
    expect(result.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([
      [field, 'must be at most 2147483647 (the longest timer Node.js honours)'],
    ]);
  });

  it('does not cap what is no timer: an approval window and the idempotency retention live in Redis', () => {
    const long = 90 * 24 * 3_600_000;
    const policy = pipelinePolicySchema.parse({
      idempotencyRetentionMs: long,
      approval: { expiresMs: long },
    });
    expect(policy.idempotencyRetentionMs).toBe(long);
    expect(policy.approval?.expiresMs).toBe(long);
  });
});

// The built CLI's `worker` and `serve` exit 2 on a bad policy before connecting
// (test/e2e/cli-env-validation.test.ts); here, the library entry points.
describe('a bad policy', () => {
  const settings = { redisUrl: inject('redisUrl'), prefix: 'p', policy: { busy: 1 } as never };

  it('is refused by Orchestrator.connect and startChangeWorker, naming the field', async () => {
    expect(() => Orchestrator.connect(settings)).toThrow(/IPSEC_FLEET_POLICY: busy: /);
    await expect(
      startChangeWorker({
        ...settings,
        cloud: { profiles: {}, timeoutMs: 1_000, maxConnections: 1 },
        concurrency: 1,
        log: {} as never,
      }),
    ).rejects.toThrow(/IPSEC_FLEET_POLICY: busy: /);
  });

  it('makes the constructor close the connection it was handed', async () => {
    const redis = new Redis(settings.redisUrl);
    expect(await redis.ping()).toBe('PONG');
    const ended = new Promise((resolve) => redis.once('end', resolve));
    expect(() => new Orchestrator(redis, settings)).toThrow(InvalidInputError);
    // A connection left open would keep this waiting until the test's timeout.
    await ended;
    expect(redis.status).toBe('end');
  });
});

describe('change ids and ClientTokens', () => {
  it('sort by creation time and make a valid ClientToken that never changes', () => {
    const earlier = newChangeId(1_700_000_000_000);
    const later = newChangeId(1_700_000_000_001);
    expect(earlier < later).toBe(true);
    expect(earlier).toMatch(/^chg-[0-9a-z]{22}$/);
    expect(clientTokenFor(earlier)).toBe(clientTokenFor(earlier));
    expect(clientTokenSchema.safeParse(clientTokenFor(earlier)).success).toBe(true);
  });
});

describe('OrchestratorKeys', () => {
  it('puts every key under one hash tag and hides idempotency keys behind a hash', () => {
    const keys = new OrchestratorKeys('ipf');
    for (const key of [
      keys.change('c'),
      keys.lane('iss-1'),
      keys.lock('iss-1'),
      keys.audit,
      keys.circuit('default'),
    ]) {
      expect(key.startsWith('{ipf}:')).toBe(true);
    }
    expect(keys.idempotency('alice', 'deploy 42 / anything')).toMatch(/^\{ipf\}:idem:[0-9a-f]{32}$/);
  });
});

import { describe, expect, it } from 'vitest';
import { clientTokenSchema } from '../../src/ipsec/update-params.js';
import { clientTokenFor, newChangeId } from '../../src/orchestrator/ids.js';
import { OrchestratorKeys } from '../../src/orchestrator/keys.js';
import { backoffDelay, pipelinePolicySchema } from '../../src/orchestrator/policy.js';

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

describe('pipelinePolicySchema', () => {
  it("defaults to DESIGN.md's table", () => {
    const policy = pipelinePolicySchema.parse({});
    expect(policy.busy).toEqual({ baseMs: 2_000, maxMs: 60_000, giveUpAfterMs: 900_000 });
    expect(policy.accountLocked).toEqual({ baseMs: 300_000, maxMs: 3_600_000, giveUpAfterMs: 86_400_000 });
    expect(policy.transient).toEqual({ baseMs: 1_000, maxMs: 30_000, maxAttempts: 8 });
  });

  it('names a bad field', () => {
    const result = pipelinePolicySchema.safeParse({ busy: { baseMs: -1, maxMs: 10 } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['busy', 'baseMs']);
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
    expect(keys.idempotency('deploy 42 / anything')).toMatch(/^\{ipf\}:idem:[0-9a-f]{32}$/);
  });
});

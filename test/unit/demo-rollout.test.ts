import { describe, expect, it } from 'vitest';
import {
  describePlanCounts,
  formatRolloutSummary,
  type RolloutOutcome,
  rolloutLines,
  rolloutOk,
  rolloutSpec,
  rolloutVerdict,
} from '../../src/demo/rollout.js';
import type { RolloutView } from '../../src/rollouts/rollout.js';
import { rolloutSpecSchema } from '../../src/rollouts/rollout-spec.js';

const servers = Array.from({ length: 12 }, (_, index) => ({
  ipsecServerId: `iss-${String(index).padStart(3, '0')}`,
  regionId: 'cn-shanghai',
}));

const outcome = (patch: Partial<RolloutOutcome> = {}): RolloutOutcome => ({
  id: 'rol-1',
  targets: 12,
  plan: { 'would-change': 10, 'no-op': 2, rejected: 0, blocked: 0, unknown: 0 },
  expected: 'completed',
  actual: 'completed',
  succeeded: 10,
  errors: 0,
  batches: 3,
  elapsedMs: 4_200,
  selfApprovalRefused: true,
  approver: 'demo-approver',
  problem: undefined,
  ...patch,
});

describe('demo rollout', () => {
  it('sends a spec the API accepts: every server, batches 1/25%/100%, no error allowed', () => {
    const spec = rolloutSpec(servers);
    expect(rolloutSpecSchema.safeParse(spec).success).toBe(true);
    expect(spec.targets).toHaveLength(12);
    expect(spec.strategy).toEqual({ batches: [1, '25%', '100%'] });
    expect(spec.maxErrors).toBe(0);
  });

  it('reports the plan counts, unknown only when there is one', () => {
    expect(describePlanCounts({ 'would-change': 10, 'no-op': 2 })).toBe(
      'would-change 10 · no-op 2 · rejected 0 · blocked 0',
    );
    expect(describePlanCounts({ 'would-change': 9, unknown: 1 })).toContain('unknown 1');
  });

  it('draws the bar with percent, batch and counts by state', () => {
    const view = {
      state: 'running',
      progress: {
        total: 10,
        submitted: 5,
        inFlight: 1,
        succeeded: 4,
        errors: 0,
        byState: { succeeded: 4, running: 1 },
        percent: 40,
        currentBatch: 2,
        batchCount: 3,
      },
    } as unknown as RolloutView;
    const [bar, counts] = rolloutLines(view, 0, 2_000);
    expect(bar).toContain('40%');
    expect(bar).toContain('4/10 done');
    expect(bar).toContain('batch 2/3');
    expect(bar).toContain('ETA 3.0s');
    expect(counts).toBe('  running 2.0 s · changes: succeeded 4 · running 1');
  });

  it('is ok only when completed and the submitter could not approve it', () => {
    expect(rolloutOk(outcome())).toBe(true);
    expect(rolloutVerdict(outcome())).toMatch(/^ok: rollout rol-1 completed as expected/);
    const halted = outcome({ actual: 'halted', problem: 'it ended halted' });
    expect(rolloutOk(halted)).toBe(false);
    expect(rolloutVerdict(halted)).toMatch(/^FAILED: rollout rol-1 is halted, expected completed/);
    expect(formatRolloutSummary(outcome()).split('\n')[2]).toMatch(
      /^rol-1\s+12\s+would-change=10,no-op=2\s+completed\s+completed\s+10\s+0\s+3$/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import { needsApproval, pipelinePolicySchema } from '../../src/orchestrator/policy.js';

describe('the approval policy', () => {
  it('holds nothing by default: one approval, 24 h, when never', () => {
    const { approval } = pipelinePolicySchema.parse({});
    expect(approval).toEqual({ when: [], required: 1, expiresMs: 24 * 3_600_000 });
    expect(needsApproval(approval, { Psk: 'x', EffectImmediately: true })).toBe(false);
  });

  it('catches a Psk, EffectImmediately=true, or every change, as configured', () => {
    const policy = (when: string[]) => pipelinePolicySchema.parse({ approval: { when } }).approval;
    expect(needsApproval(policy(['Psk']), { Psk: 'secret' })).toBe(true);
    expect(needsApproval(policy(['Psk']), { LocalSubnet: '10.0.0.0/24' })).toBe(false);
    expect(needsApproval(policy(['EffectImmediately']), { EffectImmediately: true })).toBe(true);
    expect(needsApproval(policy(['EffectImmediately']), { EffectImmediately: false })).toBe(false);
    expect(needsApproval(policy(['always']), { IpsecServerName: 'any' })).toBe(true);
  });

  it('refuses unknown triggers and fewer than one approval', () => {
    expect(pipelinePolicySchema.safeParse({ approval: { when: ['Colour'] } }).success).toBe(false);
    expect(pipelinePolicySchema.safeParse({ approval: { required: 0 } }).success).toBe(false);
    expect(pipelinePolicySchema.safeParse({ approval: { expiresMs: 0 } }).success).toBe(false);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { startWindow } from '../../src/rollouts/rate-control.js';
import type { RolloutInput } from '../../src/rollouts/rollout.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const WINDOW_MS = 400;
const LIMIT = 3;

/** Creates, plans, approves and runs a rollout over every server; the changes' start times. */
async function run(h: RolloutHarness, input: Omit<RolloutInput, 'actor' | 'targets'>) {
  const created = await h.rollouts.create({
    targets: h.sim.servers.map((server) => ({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
    })),
    params: { LocalSubnet: '172.16.60.0/24' },
    maxChangesPerMinute: LIMIT,
    actor: 'alice',
    ...input,
  });
  await h.waitForRollout(created.id, ['awaiting_approval']);
  await h.rollouts.approve(created.id, 'bob');
  const done = await h.waitForRollout(created.id, ['completed', 'halted']);
  const changes = await Promise.all(
    [...(await h.rollouts.changeIds(created.id)).values()].map((id) => h.orchestrator.changes.get(id)),
  );
  return { done, starts: changes.map((change) => change.createdAt).sort((a, b) => a - b) };
}

/** No window of WINDOW_MS holds more than LIMIT starts (a little slack for the submit itself). */
function expectWindowRespected(starts: number[]) {
  for (let i = LIMIT; i < starts.length; i++) {
    expect(starts[i]! - starts[i - LIMIT]!).toBeGreaterThanOrEqual(WINDOW_MS - 25);
  }
}

describe('maxChangesPerMinute', () => {
  it('the sliding window: starts inside it, room left, when it frees', () => {
    expect(startWindow([100, 500, 900], 3, 1_000, 1_150)).toEqual({
      recent: [500, 900],
      allowed: 1,
      freesAt: 1_500,
    });
    expect(startWindow([], 2, 1_000, 0)).toEqual({ recent: [], allowed: 2, freesAt: undefined });
  });

  it('starts a batch bigger than the limit over several windows', async () => {
    harness = await startRolloutHarness({ sim: { servers: 8 }, rateWindowMs: WINDOW_MS });
    const { done, starts } = await run(harness, { strategy: { batches: ['100%'] } });
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({ total: 8, succeeded: 8 });
    expectWindowRespected(starts);
    // 8 changes at 3 a window: the last one starts two windows after the first.
    expect(starts[7]! - starts[0]!).toBeGreaterThanOrEqual(2 * WINDOW_MS - 25);
  });

  it('holds under the concurrency strategy too', async () => {
    harness = await startRolloutHarness({ sim: { servers: 7 }, rateWindowMs: WINDOW_MS });
    const { done, starts } = await run(harness, { strategy: { concurrency: '100%' } });
    expect(done.progress).toMatchObject({ total: 7, succeeded: 7 });
    expectWindowRespected(starts);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';

/**
 * A controller holds its worker slot for its rollout's whole life, paused and baking included:
 * plans and approval windows have slots of their own, or a worker full of paused rollouts would
 * never plan a new one.
 */

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('rollout worker slots', () => {
  it('plans a new rollout while paused rollouts hold every controller slot', async () => {
    harness = await startRolloutHarness({ sim: { servers: 5 }, concurrency: 2 });
    const h = harness;
    const server = (n: number) => ({
      ipsecServerId: h.sim.servers[n]!.ipsecServerId,
      regionId: h.sim.servers[n]!.regionId,
    });
    for (const pair of [
      [0, 1],
      [2, 3],
    ]) {
      const created = await h.rollouts.create({
        targets: pair.map(server),
        params: { IpsecServerName: 'held' },
        strategy: { batches: [1] },
        pause: 'first',
        actor: 'alice',
      });
      await h.waitForRollout(created.id, ['awaiting_approval']);
      await h.rollouts.approve(created.id, 'bob');
      await h.waitForRollout(created.id, ['paused']);
    }

    const third = await h.rollouts.create({
      targets: [server(4)],
      params: { IpsecServerName: 'planned-anyway' },
      actor: 'alice',
    });
    const planned = await h.waitForRollout(third.id, ['awaiting_approval'], 10_000);
    expect(planned.plan).toMatchObject({ 'would-change': 1 });
  });
});

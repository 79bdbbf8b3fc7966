import { afterEach, describe, expect, it } from 'vitest';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { keyA, keyB } from '../support/sim-harness.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Two accounts: `default` is keyA (the simulator's primary key), `bravo` is keyB. */
function start() {
  return startRolloutHarness({
    sim: { servers: 6, accessKeys: [keyA, keyB] },
    profiles: { bravo: keyB },
  });
}

describe('credential profiles', () => {
  it('one rollout spans two accounts; a wrong or unknown profile is refused in the plan', async () => {
    harness = await start();
    const h = harness;
    const ofA = h.sim.servers.filter((server) => server.ownerAccessKeyId === keyA.accessKeyId);
    const ofB = h.sim.servers.filter((server) => server.ownerAccessKeyId === keyB.accessKeyId);
    expect(ofA.length).toBeGreaterThanOrEqual(3);
    expect(ofB.length).toBeGreaterThanOrEqual(3);
    const target = (server: (typeof ofA)[number], profile?: string) => ({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
      ...(profile ? { profile } : {}),
    });

    const created = await h.rollouts.create({
      targets: [
        target(ofA[0]!),
        target(ofA[1]!, 'default'),
        target(ofB[0]!, 'bravo'),
        target(ofB[1]!, 'bravo'),
        // keyA may not change keyB's server: the cloud answers Forbidden.
        target(ofB[2]!),
        target(ofA[2]!, 'nobody'),
      ],
      params: { LocalSubnet: '172.16.40.0/24' },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    const plan = await h.rollouts.plan(created.id);
    expect(plan.map((entry) => [entry.ipsecServerId, entry.kind, entry.code])).toEqual([
      [ofA[0]!.ipsecServerId, 'would-change', undefined],
      [ofA[1]!.ipsecServerId, 'would-change', undefined],
      [ofB[0]!.ipsecServerId, 'would-change', undefined],
      [ofB[1]!.ipsecServerId, 'would-change', undefined],
      // The planner counts Forbidden as "may not be changed" (blocked), which the run skips.
      [ofB[2]!.ipsecServerId, 'blocked', 'Forbidden'],
      [ofA[2]!.ipsecServerId, 'rejected', 'PROFILE_UNKNOWN'],
    ]);
    expect(plan[2]).toMatchObject({ profile: 'bravo' });

    await h.rollouts.approve(created.id, 'bob');
    const done = await h.waitForRollout(created.id, ['completed', 'halted']);
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({ total: 4, succeeded: 4, errors: 0 });
    for (const server of [ofA[0]!, ofA[1]!, ofB[0]!, ofB[1]!]) {
      expect(h.sim.server(server.ipsecServerId)!.config.LocalSubnet).toBe('172.16.40.0/24');
    }
    const changeIds = await h.rollouts.changeIds(created.id);
    const profiles = await Promise.all(
      [...changeIds.values()].map(async (id) => (await h.orchestrator.changes.get(id)).profile),
    );
    expect(profiles.sort()).toEqual(['bravo', 'bravo', 'default', 'default']);
  });

  it('a change naming an unknown profile ends rejected with PROFILE_UNKNOWN', async () => {
    harness = await start();
    const h = harness;
    const server = h.sim.servers[0]!;
    const { change } = await h.orchestrator.changes.submit({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
      params: { LocalSubnet: '172.16.41.0/24' },
      actor: 'alice',
      profile: 'nobody',
    });
    expect(change.profile).toBe('nobody');
    expect(await h.waitFor(change.id, ['rejected', 'failed', 'succeeded'])).toBe('rejected');
    expect((await h.orchestrator.changes.get(change.id)).lastCode).toBe('PROFILE_UNKNOWN');
    // The lane is free again: the next change on the server, with its owner's profile, runs.
    const owner = server.ownerAccessKeyId === keyA.accessKeyId ? 'default' : 'bravo';
    const next = await h.orchestrator.changes.submit({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
      params: { LocalSubnet: '172.16.41.0/24' },
      actor: 'alice',
      profile: owner,
    });
    expect(await h.waitFor(next.change.id, ['rejected', 'failed', 'succeeded'])).toBe('succeeded');
  });

  it("holds one account behind its circuit while the other's changes go on", async () => {
    harness = await start();
    const h = harness;
    h.sim.setFaults({ financialLocked: [`account:${keyB.accessKeyId}`] });
    const ofA = h.sim.servers.filter((server) => server.ownerAccessKeyId === keyA.accessKeyId);
    const ofB = h.sim.servers.filter((server) => server.ownerAccessKeyId === keyB.accessKeyId);
    const submit = (server: (typeof ofA)[number], profile: string, n: number) =>
      h.orchestrator.changes
        .submit({
          ipsecServerId: server.ipsecServerId,
          regionId: server.regionId,
          params: { LocalSubnet: `172.16.${70 + n}.0/24` },
          actor: 'alice',
          profile,
        })
        .then((result) => result.change);
    const probe = await submit(ofB[0]!, 'bravo', 0);
    await h.waitFor(probe.id, ['backing_off']);
    const waiter = await submit(ofB[1]!, 'bravo', 1);
    await h.waitFor(waiter.id, ['backing_off']);
    expect((await h.orchestrator.changes.get(waiter.id)).lastCode).toBe('CircuitOpen');
    // The default account is not locked, and its circuit is its own.
    const other = await submit(ofA[0]!, 'default', 2);
    expect(await h.waitFor(other.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');

    h.sim.setFaults({ financialLocked: [] });
    for (const change of [probe, waiter])
      expect(await h.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
  });
});

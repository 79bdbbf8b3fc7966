import { afterEach, describe, expect, it } from 'vitest';
import { CloudClients } from '../../src/orchestrator/cloud-clients.js';
import { resolveSelector, SelectorError } from '../../src/rollouts/planner.js';
import { rolloutInputSchema } from '../../src/rollouts/rollout.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { keyA, keyB } from '../support/sim-harness.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const REGIONS = ['cn-shanghai', 'cn-hangzhou'];

describe('rollout selectors', () => {
  it('takes exactly one of targets and selector, and params with a selector', () => {
    const base = { params: { LocalSubnet: '172.16.50.0/24' }, actor: 'alice' };
    const target = { ipsecServerId: 'iss-1', regionId: 'cn-shanghai' };
    expect(rolloutInputSchema.safeParse(base).success).toBe(false);
    expect(
      rolloutInputSchema.safeParse({ ...base, targets: [target], selector: { regions: ['cn-shanghai'] } })
        .success,
    ).toBe(false);
    expect(
      rolloutInputSchema.safeParse({ actor: 'alice', selector: { regions: ['cn-shanghai'] } }).success,
    ).toBe(false);
    expect(rolloutInputSchema.safeParse({ ...base, selector: { regions: ['cn-shanghai'] } }).success).toBe(
      true,
    );
  });

  it('resolves regions and a name pattern during the plan, then runs them', async () => {
    harness = await startRolloutHarness({ sim: { servers: 14, regions: REGIONS } });
    const h = harness;
    const matching = h.sim.servers.filter((server) => /^sim-ipsec-000\d$/.test(server.ipsecServerName));
    expect(matching.length).toBe(9);
    const created = await h.rollouts.create({
      selector: { regions: REGIONS, namePattern: 'sim-ipsec-000?' },
      params: { LocalSubnet: '172.16.50.0/24' },
      actor: 'alice',
    });
    expect(created).toMatchObject({ targetCount: 0, selector: { regions: REGIONS } });
    const planned = await h.waitForRollout(created.id, ['awaiting_approval']);
    expect(planned.targetCount).toBe(9);
    expect(planned.plan).toMatchObject({ 'would-change': 9 });
    const targets = await h.rollouts.targets(created.id);
    expect(targets.map((t) => t.ipsecServerId).sort()).toEqual(matching.map((s) => s.ipsecServerId).sort());
    for (const target of targets) {
      expect(target.regionId).toBe(matching.find((s) => s.ipsecServerId === target.ipsecServerId)!.regionId);
    }
    await h.rollouts.approve(created.id, 'bob');
    const done = await h.waitForRollout(created.id, ['completed', 'halted']);
    expect(done.progress).toMatchObject({ total: 9, succeeded: 9 });
    for (const server of h.sim.servers) {
      const expected = matching.includes(server) ? '172.16.50.0/24' : '192.168.0.0/24';
      expect(h.sim.server(server.ipsecServerId)!.config.LocalSubnet).toBe(expected);
    }
  });

  it('narrows to VPN gateways, lists with its profile, and refuses none or too many', async () => {
    harness = await startRolloutHarness({
      sim: { servers: 30, regions: REGIONS, accessKeys: [keyA, keyB] },
      profiles: { bravo: keyB },
    });
    const h = harness;
    const cloud = new CloudClients({
      endpoint: h.sim.endpoint,
      profiles: { default: keyA, bravo: keyB },
      timeoutMs: 2_000,
      maxConnections: 4,
    });
    const deps = { cloud: cloud.get.bind(cloud), callTimeoutMs: 2_000 };
    try {
      const ofB = h.sim.servers.filter((server) => server.ownerAccessKeyId === keyB.accessKeyId);
      const two = [ofB[0]!, ofB[1]!];
      const found = await resolveSelector(deps, {
        regions: REGIONS,
        vpnGatewayIds: two.map((server) => server.vpnGatewayId),
        profile: 'bravo',
      });
      expect(found.map((t) => t.ipsecServerId).sort()).toEqual(two.map((s) => s.ipsecServerId).sort());
      expect(found.every((t) => t.profile === 'bravo')).toBe(true);
      // Each account lists its own servers only.
      const all = await resolveSelector(deps, { regions: REGIONS, profile: 'bravo' });
      expect(all.length).toBe(ofB.length);

      await expect(resolveSelector(deps, { regions: REGIONS }, 10)).rejects.toThrow(
        /matches more than 10 IPsec servers/,
      );
      await expect(resolveSelector(deps, { regions: REGIONS, namePattern: 'nothing-*' })).rejects.toThrow(
        SelectorError,
      );
    } finally {
      await cloud.close();
    }

    // Through a rollout: a selector matching nothing ends the rollout rejected, with the reason.
    const created = await h.rollouts.create({
      selector: { regions: REGIONS, namePattern: 'nothing-*' },
      params: { LocalSubnet: '172.16.51.0/24' },
      actor: 'alice',
    });
    const rejected = await h.waitForRollout(created.id, ['rejected']);
    expect(rejected.reason).toBe('selector matches no IPsec server');

    // A pattern of many stars is matched in a bounded number of steps: as a regex, it held the
    // worker's event loop for ever, and the next worker's after a restart.
    const starry = await h.rollouts.create({
      selector: { regions: REGIONS, namePattern: `${'*'.repeat(60)}Z` },
      params: { LocalSubnet: '172.16.51.0/24' },
      actor: 'alice',
    });
    expect((await h.waitForRollout(starry.id, ['rejected'])).reason).toBe('selector matches no IPsec server');
  });
});

import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { rolloutSpecSchema } from '../../src/rollouts/rollout-spec.js';
import { InvalidInputError } from '../../src/validation.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const PSK = 'rollout-psk-never-in-clear';

describe('rollout plans', () => {
  it('classifies every target: would-change, no-op, rejected, blocked; planOnly stops at planned', async () => {
    harness = await startRolloutHarness({ sim: { servers: 4 } });
    const h = harness;
    const [changing, same, overlapping, locked] = h.sim.servers.map((server) => ({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
    })) as [
      { ipsecServerId: string; regionId: string },
      { ipsecServerId: string; regionId: string },
      { ipsecServerId: string; regionId: string },
      { ipsecServerId: string; regionId: string },
    ];
    h.sim.setFaults({ financialLocked: [locked.ipsecServerId] });
    const pool = h.sim.server(overlapping.ipsecServerId)!.config.ClientIpPool as string;
    const sameSubnet = h.sim.server(same.ipsecServerId)!.config.LocalSubnet as string;

    const created = await h.rollouts.create({
      targets: [
        { ...changing, params: { LocalSubnet: '172.16.1.0/24', Psk: PSK } },
        { ...same, params: { LocalSubnet: sameSubnet } },
        { ...overlapping, params: { LocalSubnet: pool.replace(/\/\d+$/, '/24') } },
        { ...locked },
      ],
      params: { LocalSubnet: '172.16.9.0/24' },
      planOnly: true,
      actor: 'alice',
    });
    expect(created.state).toBe('planning');
    const planned = await h.waitForRollout(created.id, ['planned']);
    expect(planned.plan).toEqual({ 'would-change': 1, 'no-op': 1, rejected: 1, blocked: 1, unknown: 0 });

    const plan = await h.rollouts.plan(created.id);
    expect(plan.map((entry) => [entry.ipsecServerId, entry.kind, entry.code])).toEqual([
      [changing.ipsecServerId, 'would-change', undefined],
      [same.ipsecServerId, 'no-op', undefined],
      [overlapping.ipsecServerId, 'rejected', 'IllegalParam.LocalSubnet'],
      [locked.ipsecServerId, 'blocked', 'VpnGateway.FinancialLocked'],
    ]);
    expect(plan[0]!.diff).toEqual(
      expect.arrayContaining([
        { field: 'LocalSubnet', from: '192.168.0.0/24', to: '172.16.1.0/24' },
        expect.objectContaining({ field: 'Psk', to: h.orchestrator.secrets.fingerprint(PSK) }),
      ]),
    );
    // A plan changes nothing.
    expect(h.sim.stats().applies).toBe(0);
    for (const server of h.sim.servers) expect(h.sim.server(server.ipsecServerId)!.history).toEqual([]);

    const events = await h.rollouts.events(created.id);
    expect(events.map((event) => event.type)).toEqual(['rollout_created', 'rollout_planned']);

    // The Psk is sealed: no key of this test holds it in clear.
    const redis = new Redis(h.redisUrl);
    try {
      const keys = await redis.keys(`{${h.prefix}}*`);
      for (const key of keys) {
        const type = await redis.type(key);
        const dump =
          type === 'hash'
            ? JSON.stringify(await redis.hgetall(key))
            : type === 'stream'
              ? JSON.stringify(await redis.xrange(key, '-', '+'))
              : type === 'string'
                ? ((await redis.get(key)) ?? '')
                : '';
        expect(dump, key).not.toContain(PSK);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('refuses bad input naming each field, and stores nothing', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const error = await h.rollouts
      .create({
        targets: [
          { ipsecServerId: 'not an id', regionId: 'cn-shanghai' },
          { ipsecServerId: 'iss-1', regionId: 'cn-shanghai', params: { LocalSubnet: 'nope' } },
        ],
        strategy: { concurrency: '150%' },
        maxErrors: -1,
        actor: 'alice',
      } as never)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    const fields = (error as InvalidInputError).issues.map((issue) => issue.field);
    expect(fields).toEqual(
      expect.arrayContaining(['targets.0.ipsecServerId', 'targets.1.params.LocalSubnet', 'maxErrors']),
    );
    expect(fields.some((field) => field.startsWith('strategy'))).toBe(true);

    const empty = await h.rollouts.create({ targets: [], actor: 'alice' }).catch((caught: unknown) => caught);
    expect((empty as InvalidInputError).issues.map((issue) => issue.field)).toContain('targets');
    const noParams = await h.rollouts
      .create({ targets: [{ ipsecServerId: 'iss-1', regionId: 'cn-shanghai' }], actor: 'alice' })
      .catch((caught: unknown) => caught);
    expect((noParams as InvalidInputError).issues.map((issue) => issue.field)).toContain('targets.0.params');

    const redis = new Redis(h.redisUrl);
    try {
      expect(await redis.keys(`{${h.prefix}}:rollout:*`)).toEqual([]);
      expect(await redis.zcard(`{${h.prefix}}:rollouts`)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('trusts a parsed spec but still checks the actor it is created for', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const [server] = h.sim.servers;
    const spec = rolloutSpecSchema.parse({
      targets: [{ ipsecServerId: server!.ipsecServerId, regionId: server!.regionId }],
      params: { IpsecServerName: 'trusted' },
      planOnly: true,
    });
    const error = await h.rollouts.createParsed(spec, 'a'.repeat(129)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).issues).toEqual([{ field: 'actor', rule: expect.any(String) }]);
    expect(await h.orchestrator.redis.zcard(`{${h.prefix}}:rollouts`)).toBe(0);

    const { rollout: created } = await h.rollouts.createParsed(spec, 'alice');
    expect(created).toMatchObject({ actor: 'alice', targetCount: 1, state: 'planning' });
    expect((await h.rollouts.targets(created.id))[0]!.params).toEqual({ IpsecServerName: 'trusted' });
  });

  it('creates nothing when the staged targets are fewer than announced (their TTL ran out)', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const { orchestrator } = harness;
    const { redis, keys, scripts } = orchestrator;
    const staging = keys.rolloutTargetsStaging('rol-staged', 'n1');
    await redis.hset(staging, '0', JSON.stringify({ ipsecServerId: 'iss-1', regionId: 'cn-shanghai' }));
    const result = await scripts.run(
      'rollout-create',
      [keys.rollout('rol-staged'), keys.rollouts, keys.rolloutTargets('rol-staged'), keys.audit, staging],
      ['rol-staged', Date.now(), JSON.stringify({ actor: 'alice' }), 2, '{}'],
    );
    expect(result).toEqual(['incomplete', 1]);
    expect(await redis.exists(staging, keys.rollout('rol-staged'), keys.rolloutTargets('rol-staged'))).toBe(
      0,
    );
    expect(await redis.zcard(keys.rollouts)).toBe(0);
  });

  it('dry-runs a named config whole, as the pipeline will send and apply it', async () => {
    harness = await startRolloutHarness({ sim: { servers: 2, faults: { configuringMs: 0 } } });
    const h = harness;
    const [server] = h.sim.servers;
    const target = { ipsecServerId: server!.ipsecServerId, regionId: server!.regionId };
    const current = h.sim.server(target.ipsecServerId)!.config.IkeConfig as unknown as Record<
      string,
      unknown
    >;
    const created = await h.rollouts.create({
      targets: [target],
      params: { IkeConfig: { IkeLifetime: 7200 } },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    const planned = h.sim.server(target.ipsecServerId)!.dryRuns;
    expect(planned).toHaveLength(1);
    expect(planned[0]!.params.IkeConfig).toEqual({ ...current, IkeLifetime: 7200 });

    await h.rollouts.approve(created.id, 'bob');
    expect((await h.waitForRollout(created.id, ['completed', 'halted'])).state).toBe('completed');
    const { dryRuns, history } = h.sim.server(target.ipsecServerId)!;
    // The plan's dry run, then the pipeline's: each checked what was then applied.
    expect(dryRuns.map((entry) => entry.params)).toEqual([history[0]!.params, history[0]!.params]);
  });

  it('retries a busy gateway by the policy: busy for a while still plans as would-change', async () => {
    harness = await startRolloutHarness({ sim: { servers: 2, faults: { busyRate: 1 } } });
    const h = harness;
    const targets = h.sim.servers.map((server) => ({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
    }));
    const created = await h.rollouts.create({
      targets,
      params: { LocalSubnet: '172.16.30.0/24' },
      planOnly: true,
      actor: 'alice',
    });
    // Longer than the old fixed retries (4 × 250 ms, jittered) waited; well within the busy rule.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await h.rollouts.get(created.id)).state).toBe('planning');
    h.sim.setFaults({ busyRate: 0 });
    const planned = await h.waitForRollout(created.id, ['planned']);
    expect(planned.plan).toEqual({ 'would-change': 2, 'no-op': 0, rejected: 0, blocked: 0, unknown: 0 });
    expect(h.sim.stats().byCode['VpnGateway.Configuring'] ?? 0).toBeGreaterThan(4);
  });

  it('gives up on a target busy past the busy rule: unknown', async () => {
    harness = await startRolloutHarness({
      sim: { servers: 1, faults: { busyRate: 1 } },
      policy: { busy: { baseMs: 20, maxMs: 100, giveUpAfterMs: 500 } },
    });
    const h = harness;
    const server = h.sim.servers[0]!;
    const created = await h.rollouts.create({
      targets: [{ ipsecServerId: server.ipsecServerId, regionId: server.regionId }],
      params: { LocalSubnet: '172.16.31.0/24' },
      planOnly: true,
      actor: 'alice',
    });
    const planned = await h.waitForRollout(created.id, ['planned']);
    expect(planned.plan).toMatchObject({ unknown: 1 });
    expect(await h.rollouts.plan(created.id)).toMatchObject([
      { kind: 'unknown', code: 'VpnGateway.Configuring' },
    ]);
  });
});

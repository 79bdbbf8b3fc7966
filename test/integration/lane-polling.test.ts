import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/orchestrator-harness.js';

/**
 * DESIGN invariant 9: a change that waits costs no polling, so the Redis work per change does not
 * grow with the number of changes queued behind the same server. Counted with MONITOR (commands
 * run inside scripts included) on this test's own keys only, since other test files share Redis.
 */

let harness: Harness | undefined;
let monitor: Redis | undefined;
afterEach(async () => {
  monitor?.disconnect();
  monitor = undefined;
  await harness?.close();
  harness = undefined;
});

describe('changes waiting in a lane', () => {
  it('cost no more Redis commands per change than changes on servers of their own', async () => {
    const queued = 20;
    harness = await startHarness({ sim: { servers: queued + 1, faults: { configuringMs: 0 } } });
    const h = harness;
    const tag = `{${h.prefix}}`;
    let commands = 0;
    monitor = await new Redis(h.redisUrl).monitor();
    monitor.on('monitor', (_time: string, args: unknown[]) => {
      if (args.some((arg) => String(arg).includes(tag))) commands++;
    });

    const runAll = async (servers: number[]) => {
      const before = commands;
      const ids: string[] = [];
      for (const [n, server] of servers.entries()) {
        const target = h.sim.servers[server]!;
        const { change } = await h.orchestrator.changes.submit({
          ipsecServerId: target.ipsecServerId,
          regionId: target.regionId,
          params: { LocalSubnet: `172.18.${n + (server === 0 ? 100 : 0)}.0/24` },
          actor: 'alice',
        });
        ids.push(change.id);
      }
      for (const id of ids) expect(await h.waitFor(id, ['succeeded', 'failed'])).toBe('succeeded');
      // MONITOR lines trail the commands a little: let the last ones arrive.
      await new Promise((resolve) => setTimeout(resolve, 200));
      return (commands - before) / servers.length;
    };

    const spread = await runAll(Array.from({ length: queued }, (_, n) => n + 1));
    const oneServer = await runAll(Array.from({ length: queued }, () => 0));
    expect(spread).toBeGreaterThan(20);
    // The bound; the lane's own list work is the difference (about 1.2 in the bench).
    expect(oneServer / spread).toBeLessThanOrEqual(1.5);
  });
});

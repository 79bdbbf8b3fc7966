import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from '../support/orchestrator-harness.js';
import { waitUntil } from '../support/worker-process.js';

/**
 * DESIGN invariant 9: a change that waits costs no polling, so the Redis work per change does not
 * grow with the number of changes queued behind the same server. Counted with MONITOR (commands
 * run inside scripts included) on this test's own keys only, since other test files share Redis.
 */

let harness: Harness | undefined;
let monitor: Socket | undefined;
afterEach(async () => {
  monitor?.destroy();
  monitor = undefined;
  await harness?.close();
  harness = undefined;
});

/**
 * A MONITOR connection of its own, on a raw socket: ioredis marks a connection as monitoring only
 * a microtask after MONITOR's +OK, so monitor lines in the same read as the +OK (a busy shared
 * Redis) fail it with 'Command queue state error'. Resolves once monitoring; `onLine` gets each
 * monitor line (`<time> [<db> <client>] "command" "arg" ...`).
 */
function startMonitor(redisUrl: string, onLine: (line: string) => void): Promise<Socket> {
  const url = new URL(redisUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port || 6379), url.hostname);
    socket.once('error', reject);
    if (url.password) {
      const user = url.username ? `${decodeURIComponent(url.username)} ` : '';
      socket.write(`AUTH ${user}${decodeURIComponent(url.password)}\r\n`);
    }
    socket.write('MONITOR\r\n');
    let buffer = '';
    let oks = url.password ? 2 : 1;
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (let end = buffer.indexOf('\r\n'); end >= 0; end = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (oks > 0) {
          if (line !== '+OK') reject(new Error(`MONITOR refused: ${line}`));
          if (--oks === 0) resolve(socket);
          continue;
        }
        onLine(line);
      }
    });
  });
}

describe('changes waiting in a lane', () => {
  // Two runs of 20 changes, each waited for (15 s hang guards): more than the default timeout.
  it('cost no more Redis commands per change than changes on servers of their own', {
    timeout: 90_000,
  }, async () => {
    const queued = 20;
    harness = await startHarness({ sim: { servers: queued + 1, faults: { configuringMs: 0 } } });
    const h = harness;
    const tag = `{${h.prefix}}`;
    let commands = 0;
    // A key the test reads after each run (not counted): once MONITOR shows it, it has shown
    // every command Redis ran before it.
    const marker = `${tag}:monitor-marker`;
    let markers = 0;
    monitor = await startMonitor(h.redisUrl, (line) => {
      if (line.includes(`"${marker}"`)) markers++;
      else if (line.includes(tag)) commands++;
    });
    /** Waits until the worker has finished every job and MONITOR has passed on what it ran. */
    const settled = async () => {
      await waitUntil(
        async () => {
          const counts = await h.orchestrator.queue.queue.getJobCounts(
            'active',
            'wait',
            'delayed',
            'prioritized',
          );
          return Object.values(counts).every((count) => count === 0) ? true : undefined;
        },
        { timeoutMs: 15_000, describe: () => 'the change jobs to finish' },
      );
      const seen = markers;
      await h.orchestrator.redis.exists(marker);
      await waitUntil(() => (markers > seen ? true : undefined), {
        timeoutMs: 15_000,
        describe: () => 'MONITOR to show the marker',
      });
    };

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
      await settled();
      return (commands - before) / servers.length;
    };

    const spread = await runAll(Array.from({ length: queued }, (_, n) => n + 1));
    const oneServer = await runAll(Array.from({ length: queued }, () => 0));
    expect(spread).toBeGreaterThan(20);
    // The bound; the lane's own list work is the difference (about 1.2 in the bench).
    expect(oneServer / spread).toBeLessThanOrEqual(1.5);
  });
});

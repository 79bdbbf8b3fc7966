/**
 * `npm run bench:sim`: signed V3 UpdateIpsecServer dry runs per second, from one keep-alive
 * AliyunClient to the simulator, the path every pipeline step takes. Prints one JSON line.
 *
 * The simulator runs in a child process (the built CLI, as users run it) so client and server
 * each get a core instead of sharing one event loop; the CPU each side spent per call is reported
 * too, a steadier figure than calls/s on a shared machine. Dry runs rotate over many servers with
 * configuringMs 0, so no call is refused as busy; any answer other than DryRunOperation fails
 * the run rather than inflating the figure.
 *
 * Tunables (environment): BENCH_SECONDS (3), BENCH_WARMUP_SECONDS (0.5), BENCH_CONCURRENCY (64),
 * BENCH_CONNECTIONS (8), BENCH_SERVERS (100).
 */
import { AliyunClient } from '../src/aliyun/client.js';
import { AliyunApiError } from '../src/aliyun/errors.js';
import { toWireParams } from '../src/ipsec/wire.js';
import { startSimProcess } from './support/sim-process.js';

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number (got ${raw})`);
  return value;
}

const seconds = numberFromEnv('BENCH_SECONDS', 3);
const warmupSeconds = numberFromEnv('BENCH_WARMUP_SECONDS', 0.5);
const concurrency = Math.floor(numberFromEnv('BENCH_CONCURRENCY', 64));
const connections = Math.floor(numberFromEnv('BENCH_CONNECTIONS', 8));
const serverCount = Math.floor(numberFromEnv('BENCH_SERVERS', 100));

async function main(): Promise<void> {
  const sim = await startSimProcess(['--servers', String(serverCount), '--configuring-ms', '0']);
  const { banner } = sim;
  const client = new AliyunClient({
    credentials: { accessKeyId: banner.accessKeyId, accessKeySecret: banner.accessKeySecret },
    endpoint: banner.endpoint,
    maxConnections: connections,
  });
  // Wire parameters built once per server: the figure is signing + HTTP + the simulator's checks.
  const calls = banner.servers.map((server, index) =>
    toWireParams({
      IpsecServerId: server.ipsecServerId,
      RegionId: server.regionId,
      LocalSubnet: `192.168.${(index % 250) + 1}.0/24`,
      IkeConfig: { IkeVersion: 'ikev2', IkeLifetime: 3600 },
      DryRun: true,
    }),
  );
  let next = 0;
  let counted = 0;
  let counting = false;
  let running = true;
  let unexpected: unknown;

  const worker = async () => {
    while (running) {
      const params = calls[next++ % calls.length] as Record<string, string>;
      try {
        await client.call('UpdateIpsecServer', params);
        throw new Error('a dry run was answered with success');
      } catch (error) {
        if (!(error instanceof AliyunApiError && error.code === 'DryRunOperation')) {
          unexpected ??= error;
          running = false;
          return;
        }
      }
      if (counting) counted++;
    }
  };

  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((resolve) => setTimeout(resolve, warmupSeconds * 1000));
  counting = true;
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const simCpuBefore = sim.cpuSeconds();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  counting = false;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore);
  const simCpuAfter = sim.cpuSeconds();
  running = false;
  await Promise.all(workers);
  await client.close();
  await sim.stop();
  if (unexpected) throw unexpected;

  process.stdout.write(
    `${JSON.stringify({
      bench: 'sim',
      signedDryRunsPerSecond: Math.round(counted / elapsed),
      calls: counted,
      seconds: Number(elapsed.toFixed(3)),
      concurrency,
      connections,
      // CPU per call: what the figure costs each side, steadier than calls/s on a shared machine.
      clientCpuUsPerCall: Number(((cpu.user + cpu.system) / counted).toFixed(1)),
      simCpuUsPerCall:
        simCpuBefore === undefined || simCpuAfter === undefined
          ? undefined
          : Number((((simCpuAfter - simCpuBefore) * 1e6) / counted).toFixed(1)),
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:sim failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});

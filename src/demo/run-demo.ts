import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareStreamIds } from '../audit/audit-log.js';
import type { AuditEvent } from '../audit/event.js';
import { type ChangeState, type ChangeView, TERMINAL_STATES } from '../orchestrator/change.js';
import type { PipelinePolicyInput } from '../orchestrator/policy.js';
import { DemoChildren } from './children.js';
import { DemoHttp } from './http.js';
import { countStates, ProgressView } from './progress.js';
import {
  type DemoRedis,
  DemoRunError,
  deletePrefixKeys,
  displayRedisUrl,
  resolveDemoRedis,
} from './redis.js';
import { formatRolloutSummary, rolloutOk, rolloutVerdict, runRolloutPart } from './rollout.js';
import { KIND_LEGEND, type PlannedChange, planScenario, type Scenario } from './scenario.js';
import { formatSummary, formatTable, type SummaryRow, summaryRows } from './summary.js';

export interface DemoOptions {
  servers: number;
  keepRunning: boolean;
  short: boolean;
  /** Where to look for Redis first (REDIS_URL). */
  redisUrl: string;
  out?: NodeJS.WriteStream;
}

/** Short delays everywhere, so the whole story (lock, backoff, circuit, recovery) takes seconds. */
export const DEMO_POLICY: PipelinePolicyInput = {
  busy: { baseMs: 250, maxMs: 2_000, giveUpAfterMs: 30_000 },
  accountLocked: { baseMs: 1_000, maxMs: 2_000, giveUpAfterMs: 30_000 },
  transient: { baseMs: 200, maxMs: 1_000, maxAttempts: 8 },
  throttled: { baseMs: 100, maxMs: 1_000 },
  leaseMs: 5_000,
  verifyAttempts: 5,
  verifyIntervalMs: 250,
  callTimeoutMs: 5_000,
};

const SIM_SETTINGS = { seed: 7, busyRate: 0.2, configuringMs: 800 };
const POLL_MS = 250;
const SUBMITTER = 'demo';
const APPROVER = 'demo-approver';

interface SimBanner {
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  servers: Array<{ ipsecServerId: string; regionId: string }>;
}

class DemoAborted extends Error {}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

function describePlan(plan: readonly PlannedChange[]): string {
  const count = (kind: string) => plan.filter((change) => change.kind === kind).length;
  return [
    `${count('psk') + count('psk-locked')} PSK rotations`,
    `${count('subnet')} subnet changes`,
    `${count('ike-upgrade')} IKE upgrades`,
    '2 changes racing for one server',
    '1 illegal LocalSubnet',
  ].join(', ');
}

/** What can be checked beyond each change's end state: the race ran in order, and won. */
interface Check {
  ok: boolean;
  text: string;
}

async function checkRace(
  http: DemoHttp,
  scenario: Scenario,
  ids: ReadonlyMap<number, string>,
  latest: ReadonlyMap<string, ChangeView>,
): Promise<Check> {
  const first = scenario.changes.find((change) => change.kind === 'race-1') as PlannedChange;
  const second = scenario.changes.find((change) => change.kind === 'race-2') as PlannedChange;
  const firstView = latest.get(ids.get(first.seq) ?? '');
  const secondView = latest.get(ids.get(second.seq) ?? '');
  const server = scenario.raceServer.ipsecServerId;
  if (!firstView || !secondView) return { ok: false, text: `race on ${server}: a change is missing` };
  const [firstTimeline, secondTimeline, cloud] = await Promise.all([
    http.changeTimeline(firstView.id),
    http.changeTimeline(secondView.id),
    http.simServer(server),
  ]);
  const firstEnd = firstTimeline.find((event) => TERMINAL_STATES.has(event.type as ChangeState));
  const secondStart = secondTimeline.find((event) => event.type === 'running');
  const inLaneOrder =
    firstEnd !== undefined && secondStart !== undefined && compareStreamIds(firstEnd.id, secondStart.id) < 0;
  // The cloud's own record: which apply came first (ClientTokens), and what the server shows now.
  const applied = cloud.history.map((entry) => entry.clientToken);
  const firstApply = applied.indexOf(firstView.clientToken);
  const secondApply = applied.indexOf(secondView.clientToken);
  const appliedInOrder = firstApply >= 0 && secondApply > firstApply;
  const wanted = String(second.params.LocalSubnet);
  const lastWins = cloud.config.LocalSubnet === wanted;
  const ok = inLaneOrder && appliedInOrder && lastWins;
  return {
    ok,
    text: ok
      ? `race on ${server}: ${firstView.id} ended before ${secondView.id} started, the cloud applied them ` +
        `in that order, and the server shows the second one's LocalSubnet ${wanted}`
      : `race on ${server}: ORDER BROKEN (first ended before second started: ${inLaneOrder}; ` +
        `applied in order: ${appliedInOrder}; server LocalSubnet ${cloud.config.LocalSubnet}, wanted ${wanted})`,
  };
}

function backoffStory(events: readonly AuditEvent[]): string {
  const byCode = new Map<string, number>();
  for (const event of events) {
    if (event.type !== 'backoff') continue;
    const code = event.code ?? 'unknown';
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }
  if (byCode.size === 0) return 'no backoffs';
  return [...byCode.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([code, count]) => `${code} ×${count}`)
    .join(', ');
}

function waitForSignal(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const promise = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => resolve(signal);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return {
    promise,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * The one-command demo: Redis (found or started), the simulator, the API and two workers as child
 * processes of the built binary; a realistic mix of changes submitted over the HTTP API; live
 * progress; a summary that compares every change's end state with the one it should reach.
 * Resolves with the exit code: 0 when everything ended as expected, 1 otherwise, 130 on Ctrl-C.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const out = options.out ?? process.stdout;
  const say = (line = '') => out.write(`${line}\n`);
  const startedAt = Date.now();
  const prefix = `demo-${randomBytes(5).toString('hex')}`;
  const secretKey = randomBytes(32).toString('hex');
  const unlockAfterMs = options.short ? 2_500 : 4_000;
  const deadlineMs = options.short ? 40_000 : 120_000;
  const concurrency = options.short ? 10 : 50;

  // Ctrl-C is ours from the start: a private redis-server runs in its own process group, so it
  // must never be left behind by a demo that died of the signal.
  const signal = waitForSignal();
  let interrupted = false;
  let unexpected: string | undefined;
  const abort = new AbortController();
  void signal.promise.then(() => {
    interrupted = true;
    abort.abort();
  });

  say(
    `ipsec-fleet demo: ${options.servers} simulated IPsec servers, two workers, the HTTP API; ` +
      'a mix of changes, then a fleet rollout',
  );
  let redis: DemoRedis | undefined;
  let workDir: string;
  try {
    redis = await resolveDemoRedis(options.redisUrl);
    if (interrupted) throw new DemoAborted('interrupted');
    workDir = await mkdtemp(join(tmpdir(), 'ipsec-fleet-demo-'));
  } catch (error) {
    await redis?.private?.stop();
    signal.dispose();
    if (error instanceof DemoAborted) return 130;
    throw error;
  }
  const logPath = join(workDir, 'demo.log');
  const tokensFile = join(workDir, 'tokens.json');
  const children = new DemoChildren(logPath, (name, how) => {
    unexpected ??= `${name} ${how}`;
    abort.abort();
  });
  const reason = () => (interrupted ? 'interrupted' : (unexpected ?? 'aborted'));
  /** The promise, unless the demo is interrupted or one of its processes dies first. */
  const guard = <T>(promise: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(new DemoAborted(reason()));
      if (abort.signal.aborted) onAbort();
      else abort.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          abort.signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          abort.signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });

  say(
    redis.private
      ? `  redis    nothing answers at ${displayRedisUrl(options.redisUrl)}: started a private redis-server at ${displayRedisUrl(redis.url)}`
      : `  redis    ${displayRedisUrl(redis.url)}  (keys under {${prefix}}, deleted at the end; nothing is flushed)`,
  );
  say(`  logs     ${logPath}`);

  let http: DemoHttp | undefined;
  let exitCode = 1;
  let summarized = false;
  let unlockTimer: NodeJS.Timeout | undefined;
  try {
    const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, LOG_LEVEL: 'info' };
    if (process.env.HOME) baseEnv.HOME = process.env.HOME;

    // The simulator prints its key on stdout, the token command the token: neither goes to the log.
    const sim = children.start(
      'sim',
      [
        'sim',
        '--servers',
        String(options.servers),
        '--seed',
        String(SIM_SETTINGS.seed),
        '--busy-rate',
        String(SIM_SETTINGS.busyRate),
        '--configuring-ms',
        String(SIM_SETTINGS.configuringMs),
      ],
      baseEnv,
      { secretStdout: true },
    );
    // Two identities: `demo` submits, `demo-approver` approves the rollout (never its submitter).
    // One after the other: both append to the same tokens file.
    const createToken = async (name: string, roles: string) => {
      const output = await children.run(
        `token-${name}`,
        ['token', 'create', '--name', name, '--roles', roles, '--file', tokensFile],
        baseEnv,
      );
      const created = output.trim().split('\n').pop() ?? '';
      if (!/^ipf_\S+$/.test(created))
        throw new DemoRunError(`ipsec-fleet token create printed no token (see ${logPath})`);
      return created;
    };
    const [banner, [token, approverToken]] = await guard(
      Promise.all([
        sim.firstJson<SimBanner>(),
        (async () => {
          // The submitter may approve too, only never its own rollout (403 APPROVER_IS_SUBMITTER).
          const submitterToken = await createToken(SUBMITTER, 'submitter,approver,viewer');
          return [submitterToken, await createToken(APPROVER, 'approver')] as const;
        })(),
      ]),
    );
    say(
      `  sim      ${banner.endpoint}  (${banner.servers.length} servers; ${SIM_SETTINGS.busyRate * 100}% of ` +
        `updates answer VpnGateway.Configuring, and every gateway does for ${SIM_SETTINGS.configuringMs} ms after an apply)`,
    );

    const commonEnv: NodeJS.ProcessEnv = {
      ...baseEnv,
      REDIS_URL: redis.url,
      IPSEC_FLEET_PREFIX: prefix,
      IPSEC_FLEET_SECRET_KEY: secretKey,
      IPSEC_FLEET_POLICY: JSON.stringify(DEMO_POLICY),
      IPSEC_FLEET_ENDPOINT: banner.endpoint,
      ALIBABA_CLOUD_ACCESS_KEY_ID: banner.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: banner.accessKeySecret,
    };
    const api = children.start('api', ['serve', '--host', '127.0.0.1', '--port', '0'], {
      ...commonEnv,
      IPSEC_FLEET_TOKENS_FILE: tokensFile,
    });
    const workers = [1, 2].map((n) =>
      children.start(`worker-${n}`, ['worker', '--concurrency', String(concurrency)], commonEnv),
    );
    const { url: apiUrl } = await guard(api.firstJson<{ url: string }>());
    await guard(Promise.all(workers.map((worker) => worker.logLine('"worker started"'))));
    http = new DemoHttp(apiUrl.replace(/\/+$/, ''), token, banner.endpoint);
    const readyBy = Date.now() + 15_000;
    for (;;) {
      const why = await guard(http.notReady());
      if (why === undefined) break;
      if (Date.now() > readyBy) throw new DemoRunError(`the API is not ready after 15 s: ${why}`);
      await guard(new Promise((resolve) => setTimeout(resolve, 200)));
    }
    say(`  api      ${http.apiUrl}  (docs ${http.apiUrl}/docs)`);
    say(
      `  workers  2 × concurrency ${concurrency}; backoff: busy 250 ms → 2 s, locked 1 s → 2 s (full jitter)`,
    );
    say(`  ready in ${seconds(Date.now() - startedAt)}`);

    // The scenario: one server locked, an illegal subnet chosen from the server's real pool.
    const servers = banner.servers.slice(0, options.servers);
    const illegalPool = (await guard(http.simServer((servers[2] as { ipsecServerId: string }).ipsecServerId)))
      .config.ClientIpPool;
    const scenario = planScenario(servers, illegalPool);
    const locked = scenario.lockedServer.ipsecServerId;
    await guard(http.setSimFaults({ financialLocked: [locked] }));
    say();
    say(`plan: ${scenario.changes.length} changes: ${describePlan(scenario.changes)}.`);
    say(
      `  ${locked} answers VpnGateway.FinancialLocked: its change backs off and the account's circuit ` +
        `holds the other changes that meet it; the demo lifts the lock at +${seconds(unlockAfterMs)}, ` +
        'so it is expected to succeed.',
    );
    say(
      `  ${scenario.raceServer.ipsecServerId} gets two LocalSubnet changes at once: both must succeed, in order.`,
    );
    say(
      `  ${scenario.illegalServer.ipsecServerId}: LocalSubnet ${String(
        scenario.changes.find((change) => change.kind === 'bad-subnet')?.params.LocalSubnet,
      )} overlaps its ClientIpPool ${illegalPool}: expected rejected by the dry run.`,
    );
    say();

    // Submit over the HTTP API: the locked one and the race pair first and in order, then the rest.
    const submitStartedAt = Date.now();
    const progress = new ProgressView(out, submitStartedAt);
    const ids = new Map<number, string>();
    const submit = async (plan: PlannedChange) => {
      const change = await http?.submitChange(
        {
          ipsecServerId: plan.ipsecServerId,
          regionId: plan.regionId,
          params: plan.params,
          note: plan.note,
        },
        `${prefix}-${plan.seq}`,
      );
      if (change) ids.set(plan.seq, change.id);
    };
    const [head, rest] = [scenario.changes.slice(0, 3), scenario.changes.slice(3)];
    for (const plan of head) await guard(submit(plan));
    await guard(mapLimit(rest, 8, submit));
    progress.note(
      `submitted ${ids.size} changes over POST /v1/changes in ${seconds(Date.now() - submitStartedAt)}`,
    );
    unlockTimer = setTimeout(
      () => {
        http?.setSimFaults({ financialLocked: [] }).then(
          () => progress.note(`lifted the financial lock on ${locked}: its next probe closes the circuit`),
          (error: unknown) => progress.note(`could not lift the financial lock: ${String(error)}`),
        );
      },
      unlockAfterMs - (Date.now() - submitStartedAt),
    );

    // Watch: GET /v1/changes about four times a second until every change has ended.
    const latest = new Map<string, ChangeView>();
    const lockedId = ids.get(1);
    let sawLock = false;
    let sawCircuit = false;
    let lockedDone = false;
    let failures = 0;
    const deadline = submitStartedAt + deadlineMs;
    for (;;) {
      try {
        const listed = await guard(http.listChanges());
        failures = 0;
        for (const change of listed) latest.set(change.id, change);
      } catch (error) {
        if (error instanceof DemoAborted) throw error;
        if (++failures >= 20) throw error;
      }
      const mine = [...ids.values()].map((id) => latest.get(id));
      progress.update(
        countStates(
          mine.map((change) => change?.state ?? 'queued'),
          ids.size,
        ),
      );
      const lockedChange = lockedId ? latest.get(lockedId) : undefined;
      if (!sawLock && lockedChange?.lastCode === 'VpnGateway.FinancialLocked') {
        sawLock = true;
        progress.note(`${locked}: VpnGateway.FinancialLocked; backing off, the account circuit is open`);
      }
      if (!sawCircuit && mine.some((change) => change?.lastCode === 'CircuitOpen')) {
        sawCircuit = true;
        progress.note('changes meeting the open circuit wait without calling the cloud (CircuitOpen)');
      }
      if (!lockedDone && lockedChange && TERMINAL_STATES.has(lockedChange.state)) {
        lockedDone = true;
        progress.note(
          `${locked}: ${lockedChange.state} after ${lockedChange.runs} attempts; the circuit is closed`,
        );
      }
      if (mine.every((change) => change && TERMINAL_STATES.has(change.state))) break;
      if (Date.now() > deadline) {
        progress.note(`gave up waiting after ${seconds(deadlineMs)}`);
        break;
      }
      await guard(new Promise((resolve) => setTimeout(resolve, POLL_MS)));
    }
    clearTimeout(unlockTimer);
    progress.finish();
    const elapsed = Date.now() - submitStartedAt;

    // The summary: every change, what it should have become, and what it became.
    const rows: SummaryRow[] = summaryRows(scenario.changes, ids, latest);
    const wrong = rows.filter((row) => row.actual !== row.expected);
    const race = await guard(checkRace(http, scenario, ids, latest));
    let story: string;
    try {
      story = backoffStory(await guard(http.audit()));
    } catch (error) {
      if (error instanceof DemoAborted) throw error;
      story = `(audit not available: ${error instanceof Error ? error.message : String(error)})`;
    }

    // Part two: a fleet rollout over the same API, planned, approved by a second identity, watched.
    say();
    const rollout = await runRolloutPart({
      http,
      servers,
      submitter: SUBMITTER,
      submitterToken: token,
      approver: APPROVER,
      approverToken,
      idempotencyKey: `${prefix}-rollout`,
      deadlineMs: options.short ? 25_000 : 60_000,
      out,
      guard,
    });

    say();
    say(formatSummary(rows));
    say();
    say(
      formatTable(
        ['kind', 'meaning'],
        [...new Set(rows.map((row) => row.kind))].map((kind) => [kind, KIND_LEGEND[kind]]),
      ),
    );
    say();
    say(`backoffs (from the audit trail): ${story}`);
    say(`${race.ok ? 'ok' : 'FAILED'}: ${race.text}`);
    say(
      wrong.length === 0
        ? `ok: all ${rows.length} changes ended as expected in ${seconds(elapsed)} ` +
            `(${rows.filter((row) => row.actual === 'succeeded').length} succeeded, ` +
            `${rows.filter((row) => row.actual === 'rejected').length} rejected)`
        : `FAILED: ${wrong.length} of ${rows.length} changes did not end as expected: ` +
            wrong
              .map((row) => `${row.change} (${row.kind}) is ${row.actual}, expected ${row.expected}`)
              .join('; '),
    );
    say();
    say(formatRolloutSummary(rollout));
    say(rolloutVerdict(rollout));
    exitCode = wrong.length === 0 && race.ok && rolloutOk(rollout) ? 0 : 1;
    summarized = true;

    const sample = ids.get(1) ?? '<change id>';
    say();
    say(`API       ${http.apiUrl}        docs ${http.apiUrl}/docs (OpenAPI: ${http.apiUrl}/openapi.json)`);
    if (options.keepRunning) {
      say(
        `token     ${token}   (${SUBMITTER}: roles submitter, approver, viewer; the tokens file holds only its hash)`,
      );
      say(`approver  ${approverToken}   (${APPROVER}: role approver)`);
      say(`sim       ${banner.endpoint}  (curl ${banner.endpoint}/_sim/stats)`);
      say(`redis     ${displayRedisUrl(redis.url)}  prefix ${prefix}`);
      say(`logs      ${logPath}`);
    }
    say('the audit trail:');
    if (options.keepRunning) say(`  export IPSEC_FLEET_API=${http.apiUrl} IPSEC_FLEET_TOKEN=${token}`);
    else
      say(
        `  export IPSEC_FLEET_API=${http.apiUrl} IPSEC_FLEET_TOKEN=<the demo's token, shown with --keep-running>`,
      );
    say(`  curl -H "authorization: Bearer $IPSEC_FLEET_TOKEN" "${http.apiUrl}/v1/audit?format=jsonl"`);
    say(`  npx ipsec-fleet audit --change ${sample}`);
    if (options.keepRunning) {
      say();
      say('Everything keeps running until Ctrl-C.');
      await guard(new Promise<never>(() => undefined));
    } else {
      say('(the API stops with the demo: run `npm run demo -- --keep-running` to try these)');
    }
  } catch (error) {
    if (!(error instanceof DemoAborted)) throw error;
    if (!interrupted) {
      say(`the demo stopped: ${error.message} (see ${logPath})`);
      exitCode = 1;
    }
  } finally {
    clearTimeout(unlockTimer);
    // With --keep-running, Ctrl-C is the way out: the exit code stays the summary's.
    if (interrupted && !(options.keepRunning && summarized)) exitCode = 130;
    out.write(interrupted ? '\nstopping…\n' : '\n');
    await http?.close().catch(() => undefined);
    await children.stopAll({ settleMs: interrupted ? 2_000 : 0 });
    let deleted = 'stopped its private redis-server';
    if (!redis.private) {
      try {
        deleted = `deleted ${await deletePrefixKeys(redis.url, prefix)} keys under {${prefix}}`;
      } catch (error) {
        deleted = `could not delete the keys under {${prefix}}: ${String(error)}`;
      }
    }
    await redis.private?.stop();
    await rm(tokensFile, { force: true });
    await children.closeLog();
    signal.dispose();
    say(`stopped ${children.running.join(', ') || 'nothing'}; ${deleted}; logs in ${logPath}`);
  }
  return exitCode;
}

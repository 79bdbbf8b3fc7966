/**
 * `npm run bench:audit-server`: what a query of one server's audit trail keeps in memory. It
 * seeds a private redis-server with one server's history, BENCH_CHANGES changes (10,000) of five
 * events each, one change a minute, then reads it all through `AuditLog.stream` and reports the
 * largest heap growth seen (after a full GC every BENCH_SAMPLE_EVERY events) over the heap before
 * the query. A query that streams holds a page of changes, whatever the server's history; one that
 * gathers first grows with it. Needs `node --expose-gc` (the npm script passes it). Last stdout
 * line: one JSON object.
 *
 * The history is written straight into the change hashes and the server index, in the layout the
 * transition scripts write: running 10,000 changes through the pipeline would take minutes and
 * could not spread them over a week of Redis's clock, which is what lets a streaming query emit.
 */
import { performance } from 'node:perf_hooks';
import { AuditLog } from '../src/audit/audit-log.js';
import { encodeEvent } from '../src/audit/event.js';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { startPrivateRedis } from '../src/redis/private-server.js';
import { collectedHeap } from './support/heap.js';

const CHANGES = Number(process.env.BENCH_CHANGES ?? 10_000);
const SAMPLE_EVERY = Number(process.env.BENCH_SAMPLE_EVERY ?? 5_000);
const EVENT_TYPES = ['submitted', 'running', 'dry_run_passed', 'applied', 'succeeded'];
const SERVER = { ipsecServerId: 'iss-benchaudit', regionId: 'cn-shanghai' };
const MINUTE = 60_000;
const SEED_PIPELINE = 500;

async function seed(orchestrator: Orchestrator, startMs: number): Promise<void> {
  const { redis, keys } = orchestrator;
  for (let first = 0; first < CHANGES; first += SEED_PIPELINE) {
    const pipeline = redis.pipeline();
    for (let n = first; n < Math.min(first + SEED_PIPELINE, CHANGES); n++) {
      const changeId = `chg-bench${String(n).padStart(8, '0')}`;
      const submittedAt = startMs + n * MINUTE;
      const context = { ...SERVER, actor: 'bench', changeId, attempt: 0 };
      const timeline = EVENT_TYPES.flatMap((type, step) => {
        const at = submittedAt + step * 1_000;
        return [`e:${at}-0`, encodeEvent(context, type, { details: { note: 'x'.repeat(200) } }, at)];
      });
      pipeline.hset(keys.change(changeId), 'state', 'succeeded', ...timeline);
      pipeline.zadd(keys.serverChanges(SERVER.ipsecServerId), submittedAt, changeId);
    }
    await pipeline.exec();
  }
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const orchestrator = Orchestrator.connect({ redisUrl: redis.url, prefix: 'bench' });
  try {
    await seed(orchestrator, Date.now() - CHANGES * MINUTE);
    const audit = new AuditLog(orchestrator.redis, orchestrator.keys);

    const started = performance.now();
    let timed = 0;
    for await (const _ of audit.stream({ ipsecServerId: SERVER.ipsecServerId })) timed++;
    const seconds = (performance.now() - started) / 1000;

    const before = collectedHeap();
    let peak = before;
    let read = 0;
    for await (const _ of audit.stream({ ipsecServerId: SERVER.ipsecServerId })) {
      if (++read % SAMPLE_EVERY === 0) peak = Math.max(peak, collectedHeap());
    }
    process.stdout.write(
      `${JSON.stringify({
        bench: 'audit-server',
        changes: CHANGES,
        events: read,
        eventsPerSecond: Math.round(timed / seconds),
        peakHeapGrowthMB: +((peak - before) / 1e6).toFixed(1),
        heapMB: { before: +(before / 1e6).toFixed(1), peak: +(peak / 1e6).toFixed(1) },
        node: process.version,
      })}\n`,
    );
  } finally {
    await orchestrator.close();
    await redis.stop();
  }
}

await main();

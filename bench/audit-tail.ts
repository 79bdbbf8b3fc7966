/**
 * `npm run bench:audit-tail`: what the API's audit tail (the one XREAD loop behind SSE streams
 * and /metrics) keeps in memory as events flow. It reads BENCH_EVENTS events (50,000) from a
 * private redis-server, then compares the heap after a full GC with the heap before it started:
 * a tail that holds nothing grows by about nothing per event, whatever the count. Needs
 * `node --expose-gc` (the npm script passes it). Last stdout line: one JSON object.
 */
import { performance } from 'node:perf_hooks';
import { AuditTail } from '../src/api/audit-tail.js';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { startPrivateRedis } from '../src/redis/private-server.js';
import { collectedHeap } from './support/heap.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 50_000);
const PIPELINE = 1_000;

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const orchestrator = Orchestrator.connect({ redisUrl: redis.url, prefix: 'bench' });
  try {
    // One real event, written again and again: the tail parses each as it would any other.
    await orchestrator.changes.submit({
      ipsecServerId: 'iss-bench1',
      regionId: 'cn-shanghai',
      params: { IpsecServerName: 'bench-audit' },
      actor: 'bench',
    });
    const [[, fields] = ['', []]] = await orchestrator.redis.xrange(
      orchestrator.keys.audit,
      '-',
      '+',
      'COUNT',
      1,
    );
    for (let written = 1; written < EVENTS; written += PIPELINE) {
      const pipeline = orchestrator.redis.pipeline();
      for (let i = 0; i < Math.min(PIPELINE, EVENTS - written); i++)
        pipeline.xadd(orchestrator.keys.audit, '*', ...fields);
      await pipeline.exec();
    }

    const tail = new AuditTail(orchestrator, { blockMs: 50 });
    let seen = 0;
    tail.onEvent(() => {
      seen++;
    });
    const before = collectedHeap();
    const started = performance.now();
    tail.start();
    while (seen < EVENTS) await new Promise((resolve) => setTimeout(resolve, 20));
    const seconds = (performance.now() - started) / 1000;
    const caughtUp = collectedHeap();
    await tail.close();
    const closed = collectedHeap();
    process.stdout.write(
      `${JSON.stringify({
        bench: 'audit-tail',
        events: seen,
        eventsPerSecond: Math.round(seen / seconds),
        heapBytesPerEvent: Math.round((caughtUp - before) / seen),
        heapMB: {
          before: +(before / 1e6).toFixed(1),
          caughtUp: +(caughtUp / 1e6).toFixed(1),
          afterClose: +(closed / 1e6).toFixed(1),
        },
        node: process.version,
      })}\n`,
    );
  } finally {
    await orchestrator.close();
    await redis.stop();
  }
}

await main();

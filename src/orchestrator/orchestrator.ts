import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../log.js';
import { runEvery } from '../periodic.js';
import { startOrClose } from '../start-or-close.js';
import { parseOrThrow } from '../validation.js';
import { CHANGE_QUEUE, type ChangeJobData, ChangeQueue } from './change-queue.js';
import { Changes } from './changes.js';
import { CloudClients, type CloudSettings } from './cloud-clients.js';
import { OrchestratorKeys } from './keys.js';
import { outageLog } from './outage-log.js';
import { createChangeProcessor } from './pipeline.js';
import { type PipelinePolicy, type PipelinePolicyInput, pipelinePolicySchema } from './policy.js';
import { rateLimiterFor } from './rate-limiter.js';
import { asRefusal, connectRedis, reachRedis } from './redis.js';
import { Scripts } from './scripts.js';
import { SecretBox } from './secret-box.js';

/** How often a worker says it is alive (a sorted set of worker ids by last report). */
export const HEARTBEAT_MS = 5_000;
const FORGET_WORKERS_AFTER_MS = 24 * 3_600_000;

export interface OrchestratorSettings {
  redisUrl: string;
  prefix: string;
  /** Seals Psks at rest; without it, changes carrying a Psk are refused. */
  secretKey?: string | undefined;
  policy?: PipelinePolicyInput | undefined;
}

/**
 * The producer side: what `serve`, the CLI and tests use to submit and inspect changes. Holds one
 * Redis connection and BullMQ queue; stateless otherwise, so any number can run.
 */
export class Orchestrator {
  readonly keys: OrchestratorKeys;
  readonly scripts: Scripts;
  readonly queue: ChangeQueue;
  readonly changes: Changes;
  readonly audit: AuditLog;
  readonly policy: PipelinePolicy;
  readonly secrets: SecretBox;

  /**
   * Takes over `redis` (close() disconnects it). Whatever can refuse the settings runs before
   * anything else is made, and a refusal disconnects `redis`: its retries would otherwise keep the
   * process alive after the error was reported.
   */
  constructor(
    readonly redis: Redis,
    settings: OrchestratorSettings,
  ) {
    try {
      this.policy = parsePolicy(settings.policy);
      this.secrets = SecretBox.fromKey(settings.secretKey);
    } catch (error) {
      redis.disconnect();
      throw error;
    }
    this.keys = new OrchestratorKeys(settings.prefix);
    this.scripts = new Scripts(redis);
    this.queue = new ChangeQueue(redis, settings.prefix);
    this.changes = new Changes({
      redis,
      keys: this.keys,
      scripts: this.scripts,
      queue: this.queue,
      secrets: this.secrets,
      idempotencyRetentionMs: this.policy.idempotencyRetentionMs,
      approval: this.policy.approval,
    });
    this.audit = new AuditLog(redis, this.keys);
  }

  /** Workers that reported within `withinMs`: what readiness checks ask before taking changes. */
  async liveWorkers(withinMs = 3 * HEARTBEAT_MS): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.workers, Date.now() - withinMs, '+inf');
  }

  static connect(settings: OrchestratorSettings): Orchestrator {
    // Refused settings must not open a connection first (see the constructor).
    const checked = checkSettings(settings);
    return new Orchestrator(connectRedis(settings.redisUrl, 'producer'), checked);
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.redis.disconnect();
  }
}

function parsePolicy(policy: PipelinePolicyInput | undefined): PipelinePolicy {
  return parseOrThrow(pipelinePolicySchema, policy ?? {}, 'IPSEC_FLEET_POLICY');
}

/**
 * Throws what the constructor would, before a connection is opened for it; the policy comes back
 * parsed, so the constructor's second parse only meets values that already passed.
 */
function checkSettings<T extends OrchestratorSettings>(settings: T): T {
  const policy = parsePolicy(settings.policy);
  SecretBox.fromKey(settings.secretKey);
  return { ...settings, policy };
}

export interface ChangeWorkerSettings extends OrchestratorSettings {
  cloud: CloudSettings;
  concurrency: number;
  log: Logger;
  /** How often lane heads left without a job by a crash are looked for (0: only at start). */
  repairIntervalMs?: number;
  workerId?: string;
}

export interface ChangeWorker {
  readonly workerId: string;
  readonly worker: Worker<ChangeJobData>;
  readonly orchestrator: Orchestrator;
  /** Stops taking jobs, lets running steps finish, closes connections. */
  close(): Promise<void>;
}

export async function startChangeWorker(input: ChangeWorkerSettings): Promise<ChangeWorker> {
  const settings = checkSettings(input);
  const redis = connectRedis(settings.redisUrl, 'worker');
  const orchestrator = new Orchestrator(redis, settings);
  const workerId = settings.workerId ?? `worker:${hostname()}:${process.pid}`;
  const cloud = new CloudClients(
    settings.cloud,
    rateLimiterFor(orchestrator.policy, orchestrator.scripts, orchestrator.keys),
  );
  let worker: Worker<ChangeJobData> | undefined;
  let stopping = false;
  const timers: (() => void)[] = [];
  // The one way down, from any point of the start or after it.
  const closeAll = async (force: boolean) => {
    stopping = true;
    for (const stop of timers) stop();
    await worker?.close(force);
    // Only when connected: while Redis is away the command would wait in the queue for ever.
    if (redis.status === 'ready')
      await redis.zrem(orchestrator.keys.workers, workerId).catch(() => undefined);
    await cloud.close();
    await orchestrator.close();
  };
  const started = await startOrClose(
    async () => {
      // Before the BullMQ worker exists: refused credentials end the start here, not in its loop.
      await reachRedis(redis);
      const processor = createChangeProcessor({
        changes: orchestrator.changes,
        keys: orchestrator.keys,
        scripts: orchestrator.scripts,
        secrets: orchestrator.secrets,
        policy: orchestrator.policy,
        cloud: (profile, regionId) => cloud.get(profile, regionId),
        workerId,
        log: settings.log,
        stopping: () => stopping,
      });
      const created = new Worker<ChangeJobData>(CHANGE_QUEUE, processor, {
        connection: redis,
        prefix: `{${settings.prefix}}`,
        concurrency: settings.concurrency,
        // BullMQ's job lock fails over as fast as our server lease does.
        lockDuration: orchestrator.policy.leaseMs,
        stalledInterval: orchestrator.policy.leaseMs,
        // Every step is safe to run again, so a job that stalls (its worker died) is always resumed.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
      });
      worker = created;
      created.on('error', outageLog(redis, settings.log, 'worker'));
      // BullMQ's INFO, and our scripts, can meet an ACL user's NOPERM.
      await created.waitUntilReady().catch((error: unknown) => {
        throw asRefusal(error);
      });
      const heartbeat = () => {
        const now = Date.now();
        // Workers that died without saying goodbye (kill -9, a lost host) leave their id behind;
        // a day later nobody reads it, and the set would otherwise grow with every restart.
        return redis
          .multi()
          .zadd(orchestrator.keys.workers, now, workerId)
          .zremrangebyscore(orchestrator.keys.workers, '-inf', now - FORGET_WORKERS_AFTER_MS)
          .exec();
      };
      const heartbeatFailed = (error: unknown) => settings.log.warn({ err: error }, 'heartbeat failed');
      await heartbeat().catch(heartbeatFailed);
      timers.push(runEvery(HEARTBEAT_MS, heartbeat, heartbeatFailed));
      await orchestrator.changes.repairLanes();
      timers.push(
        runEvery(
          settings.repairIntervalMs ?? 300_000,
          () => orchestrator.changes.repairLanes(),
          (error) => settings.log.warn({ err: error }, 'lane repair failed'),
        ),
      );
      return created;
    },
    closeAll,
    settings.log,
  );
  return { workerId, worker: started, orchestrator, close: () => closeAll(false) };
}

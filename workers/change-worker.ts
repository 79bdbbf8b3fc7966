import type { Config } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { type ChangeWorker, startChangeWorker } from '../src/orchestrator/orchestrator.js';
import { loadProfiles } from '../src/orchestrator/profiles.js';
import { startRolloutWorker } from '../src/rollouts/worker.js';
import { startOrClose } from '../src/start-or-close.js';

/** A stop may always take this long past the deadline of the cloud calls in flight. */
const STOP_MARGIN_MS = 5_000;

export interface ChangeWorkerProcessOptions {
  config: Config;
  concurrency?: number | undefined;
}

/**
 * Runs change workers until SIGTERM or SIGINT, then stops taking jobs, lets the steps in flight
 * finish (or hands their jobs back) and exits 0. `ipsec-fleet worker` and the container's entry
 * point both land here.
 */
export async function runChangeWorker(options: ChangeWorkerProcessOptions): Promise<ChangeWorker> {
  const { config } = options;
  const log = createLogger({ level: config.LOG_LEVEL, name: 'change-worker' });
  const settings = {
    redisUrl: config.REDIS_URL,
    prefix: config.IPSEC_FLEET_PREFIX,
    secretKey: config.IPSEC_FLEET_SECRET_KEY,
    policy: config.IPSEC_FLEET_POLICY ? JSON.parse(config.IPSEC_FLEET_POLICY) : undefined,
    concurrency: options.concurrency ?? config.IPSEC_FLEET_WORKER_CONCURRENCY,
    cloud: {
      endpoint: config.IPSEC_FLEET_ENDPOINT,
      profiles: loadProfiles(config),
      timeoutMs: config.IPSEC_FLEET_HTTP_TIMEOUT_MS,
      maxConnections: config.IPSEC_FLEET_HTTP_CONNECTIONS,
    },
    log,
  };
  const exit = (code: number) => {
    log.flush();
    process.exit(code);
  };
  let stopping = false;
  /** Set once both workers run: closes them. */
  let shutDown: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now, the steps in flight resume on another worker');
      exit(1);
    }
    stopping = true;
    if (!shutDown) {
      log.warn(
        { signal },
        'stopping before the start finished: exiting, a change taken meanwhile resumes elsewhere',
      );
      exit(1);
    }
    log.info({ signal }, 'stopping: finishing the steps in flight');
    shutDown?.();
  };
  // Before anything starts, not after: until a listener exists a signal has its default action, and
  // one landing between the start and the listener (the "worker started" line already out) killed
  // the process mid-step.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const worker = await startChangeWorker(settings);
  // Rollouts (plans, approval windows, controllers) run beside the changes, on the same settings.
  const rolloutWorker = await startOrClose(
    () =>
      startRolloutWorker({ ...settings, concurrency: undefined, workerId: `rollouts:${worker.workerId}` }),
    () => worker.close(),
    log,
  );
  // Closing waits for the runs in flight. With Redis reachable they end, and their leases hold
  // meanwhile; with Redis away closing never ends, and once a lease has passed nothing this worker
  // ran is its own any more (its cloud calls were stopped at three quarters of it). Leaving then is
  // as safe as a crash: the jobs resume elsewhere.
  const { leaseMs, callTimeoutMs } = worker.orchestrator.policy;
  const stopDeadlineMs = Math.max(leaseMs, callTimeoutMs + STOP_MARGIN_MS);
  const redis = worker.orchestrator.redis;
  const giveUpUnlessRedisAnswers = () => {
    // With Redis there, the runs in flight end by their own deadlines (a verify loop, a throttled
    // retry can outlast one call): keep waiting for them.
    if (redis.status === 'ready') {
      log.info({ deadlineMs: stopDeadlineMs }, 'still finishing the steps in flight');
      setTimeout(giveUpUnlessRedisAnswers, stopDeadlineMs).unref();
      return;
    }
    log.error(
      { deadlineMs: stopDeadlineMs, redis: redis.status },
      'stop timed out with Redis away: exiting, the steps in flight resume on another worker',
    );
    exit(1);
  };
  shutDown = () => {
    setTimeout(giveUpUnlessRedisAnswers, stopDeadlineMs).unref();
    Promise.all([rolloutWorker.close(), worker.close()]).then(
      () => {
        log.info('stopped');
        exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'stop failed');
        exit(1);
      },
    );
  };
  log.info(
    { workerId: worker.workerId, concurrency: options.concurrency ?? config.IPSEC_FLEET_WORKER_CONCURRENCY },
    'worker started',
  );
  return worker;
}

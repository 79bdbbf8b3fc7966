import type { Logger } from '../log.js';
import type { SimAccessKey } from './auth.js';
import { TIMESTAMP_WINDOW_MS } from './auth.js';
import { FaultInjector } from './faults.js';
import { Fleet, type SimHistoryEntry, type SimServerRecord } from './fleet.js';
import { ClientTokenStore } from './idempotency.js';
import { NonceCache } from './nonce-cache.js';
import type { SimFaultsPatch, SimulatorOptions } from './options.js';
import { InFlightUpdates, StatsRecorder } from './stats.js';
import { QuotaBook } from './token-bucket.js';

/** Milliseconds since the epoch; injectable so pure parts can be tested without waiting. */
export type SimClock = () => number;

/**
 * Everything the simulated cloud remembers, in one place so that `reset()` can put all of it
 * back: the fleet as it started, stats, nonces, client tokens, configuring windows (they live on
 * the servers), quota buckets and the fault generator. Faults themselves stay as last set: they
 * are the test's choice of weather, not state the calls built up.
 */
export class SimState {
  readonly keys: ReadonlyMap<string, SimAccessKey>;
  readonly stats = new StatsRecorder();
  readonly inFlight = new InFlightUpdates(this.stats);
  readonly tokens = new ClientTokenStore();
  readonly quotas = new QuotaBook();
  readonly faults: FaultInjector;
  readonly nonces: NonceCache;
  fleet: Fleet;

  constructor(
    readonly options: SimulatorOptions,
    private readonly initialRecords: readonly SimServerRecord[],
    private readonly initialHistories: ReadonlyMap<string, SimHistoryEntry[]>,
    readonly clock: SimClock,
    readonly logger: Logger | undefined,
  ) {
    this.keys = new Map(options.accessKeys.map((key) => [key.accessKeyId, key]));
    this.fleet = new Fleet(initialRecords, initialHistories);
    this.faults = new FaultInjector(options.seed, options.faults);
    this.quotas.setQps(options.faults.qps);
    this.nonces = new NonceCache(TIMESTAMP_WINDOW_MS, clock());
  }

  /** Applies an already validated fault patch. */
  setFaults(patch: SimFaultsPatch): void {
    this.faults.apply(patch);
    this.quotas.setQps(this.faults.qps);
  }

  reset(): void {
    this.fleet = new Fleet(this.initialRecords, this.initialHistories);
    this.stats.clear();
    this.nonces.clear(this.clock());
    this.tokens.clear();
    this.quotas.clear();
    this.faults.reseed();
  }
}

import { MAX_TIMER_MS } from '../orchestrator/policy.js';
import { parseOrThrow } from '../validation.js';
import { type SimFaults, type SimFaultsPatch, simFaultsSchema } from './options.js';
import { mixSeed, Prng } from './prng.js';

/**
 * Misbehaviour on demand, reproducibly. Every API call draws the same number of values from one
 * seeded generator when it arrives, whatever the current rates and whatever becomes of the call,
 * so one seed and one sequence of calls always meet the same faults, and changing a rate at run
 * time does not shift the draws of later calls.
 */

const FAULT_STREAM = 2;

export type InjectedFailure = 'InternalError' | 'ServiceUnavailable';

/** What the dice said for one call. */
export interface FaultDraw {
  /** Answer 500/503 instead of processing. */
  failure: InjectedFailure | undefined;
  /** Destroy the connection: before processing, or (UpdateIpsecServer only) after it. */
  reset: 'before' | 'after' | undefined;
  /** Process the call, then answer 200 with a page that is not JSON instead of the cloud's answer. */
  garbled: boolean;
  /** Milliseconds to hold the call before processing it. */
  delayMs: number;
  /** Compared with busyRate when an update reaches that check. */
  busyRoll: number;
}

export const NO_FAULTS_DRAW: FaultDraw = {
  failure: undefined,
  reset: undefined,
  garbled: false,
  delayMs: 0,
  busyRoll: 1,
};

const patchSchema = simFaultsSchema.partial();

/**
 * A fault patch (`POST /_sim/faults`, `handle.setFaults`) validated: only the fields given, each
 * checked by the options schema. Throws InvalidInputError naming each bad field.
 */
export function parseFaultsPatch(input: unknown): SimFaultsPatch {
  const parsed = parseOrThrow(patchSchema, input, 'faults');
  // partial() still fills defaults in zod 4; a patch must only carry what the caller named.
  const given = input as Record<string, unknown>;
  const patch: Record<string, unknown> = {};
  for (const key of Object.keys(parsed)) {
    if (given[key] !== undefined) patch[key] = parsed[key as keyof typeof parsed];
  }
  return patch as SimFaultsPatch;
}

export class FaultInjector {
  private prng: Prng;
  private current: SimFaults;
  private locked: Set<string>;

  constructor(
    private readonly seed: number,
    faults: SimFaults,
  ) {
    this.prng = new Prng(mixSeed(seed, FAULT_STREAM));
    this.current = faults;
    this.locked = new Set(faults.financialLocked);
  }

  get faults(): SimFaults {
    return { ...this.current, financialLocked: [...this.current.financialLocked] };
  }

  get configuringMs(): number {
    return this.current.configuringMs;
  }

  get partialConfigs(): 'keep' | 'defaults' {
    return this.current.partialConfigs;
  }

  get tokenProcessingMs(): number {
    return this.current.tokenProcessingMs;
  }

  get staleReadMs(): number {
    return this.current.staleReadMs;
  }

  get busyRate(): number {
    return this.current.busyRate;
  }

  get qps(): number {
    return this.current.qps;
  }

  /** Applies an already validated patch (see parseFaultsPatch). */
  apply(patch: SimFaultsPatch): void {
    this.current = { ...this.current, ...(patch as Partial<SimFaults>) };
    this.locked = new Set(this.current.financialLocked);
  }

  /** Back to the first draw of the seed. */
  reseed(): void {
    this.prng = new Prng(mixSeed(this.seed, FAULT_STREAM));
  }

  /** A server is locked by its own id or by `account:<owner AccessKeyId>`. */
  isFinancialLocked(ipsecServerId: string, ownerAccessKeyId: string): boolean {
    return (
      this.locked.size > 0 &&
      (this.locked.has(ipsecServerId) || this.locked.has(`account:${ownerAccessKeyId}`))
    );
  }

  /** Six draws per call, always, in arrival order. */
  draw(isUpdate: boolean, isApply = false): FaultDraw {
    const failRoll = this.prng.next();
    const failKindRoll = this.prng.next();
    const resetRoll = this.prng.next();
    const resetWhenRoll = this.prng.next();
    const jitterRoll = this.prng.next();
    const busyRoll = this.prng.next();
    const { failRate, resetRate, garbleRate, latencyMs, jitterMs, applyLatencyMs } = this.current;
    let failure: InjectedFailure | undefined;
    let reset: FaultDraw['reset'];
    let garbled = false;
    if (failRoll < failRate) failure = failKindRoll < 0.5 ? 'InternalError' : 'ServiceUnavailable';
    else if (resetRoll < resetRate) reset = isUpdate && resetWhenRoll < 0.5 ? 'after' : 'before';
    // The top band of the reset roll: a seventh draw would shift every seeded run's faults.
    else if (resetRoll >= 1 - garbleRate) garbled = true;
    return {
      failure,
      reset,
      garbled,
      // Each part is capped, their sum is not: Node would fire a longer timer after 1 ms.
      delayMs: Math.min(
        MAX_TIMER_MS,
        latencyMs +
          (isApply ? applyLatencyMs : 0) +
          (jitterMs > 0 ? Math.floor(jitterRoll * (jitterMs + 1)) : 0),
      ),
      busyRoll,
    };
  }
}

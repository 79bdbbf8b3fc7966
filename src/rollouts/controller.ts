import { setTimeout as sleep } from 'node:timers/promises';
import { IpsecFleetError } from '../errors.js';
import type { Logger } from '../log.js';
import { CANCELLABLE_STATES, type ChangeState } from '../orchestrator/change.js';
import { DEFAULT_PROFILE } from '../orchestrator/changes.js';
import { RolloutNotRunningError, UnexpectedScriptResultError } from '../orchestrator/errors.js';
import { RolloutStateError } from './errors.js';
import { encodeRolloutEvent } from './events.js';
import {
  batchRanges,
  concurrencyLimit,
  errorThreshold,
  rampedConcurrency,
  startWindow,
} from './rate-control.js';
import { type RolloutState, RUN_VERDICTS } from './rollout.js';
import { isTerminalChange, type Rollouts, type RunnableTarget } from './rollouts.js';

export interface ControllerOptions {
  /** How often the controller looks at its changes' states. */
  pollMs: number;
  log: Logger;
  /** Aborted when the worker shuts down: the controller stops where it is (see worker.ts). */
  signal?: AbortSignal;
  /** The window of `maxChangesPerMinute` (60,000 ms; shorter in tests). */
  rateWindowMs?: number;
  /**
   * The longest a parked controller stays off its slot (60,000 ms unless told). A resume or cancel
   * wakes it at once; this bounds the wait should that wake be lost (its caller died between the
   * transition and the wake). A bake with more than this left is spent parked too, until it ends;
   * a shorter one on the slot, as parking costs a read of the whole rollout when it wakes. So are
   * changes in flight that all back off for longer than this (waitOrPark).
   */
  parkMs?: number;
}

/**
 * Nothing to do until `until` unless the rollout leaves `state` (paused, or `running` while it
 * bakes or its changes in flight back off): the worker hands the job back to the queue till then,
 * freeing its slot, and whoever moves the rollout on wakes it (Rollouts.resume, cancel).
 */
export interface Parked {
  until: number;
  state: RolloutState;
}

/**
 * What a controller run ended with: the rollout ended, the worker asked it to stop first, or it
 * parked (a pause can last days: a worker's slots must not all be held by rollouts waiting for a
 * person while approved ones wait for a slot).
 */
export type ControllerResult = 'ended' | 'stopped' | Parked;

const ACTIVE: readonly RolloutState[] = ['running', 'paused'];
/** The lastCode acquire.lua gives a change it made wait on its account's open circuit. */
const CIRCUIT_OPEN = 'CircuitOpen';

/** A change in flight as the controller last read it: what waitOrPark decides from. */
interface Followed {
  id: string;
  /** Whose lane it waits in while `queued`. */
  ipsecServerId: string;
  state: string;
  /** When its job runs again while it backs off (NaN if unset); stale for a circuit waiter. */
  nextAt: number;
  lastCode: string | null;
  profile: string;
}
const FOLLOWED_FIELDS = ['state', 'nextAt', 'lastCode', 'profile'] as const;

function followedOf(id: string, ipsecServerId: string, row: (string | null)[] | undefined): Followed {
  const [state = null, nextAt = null, lastCode = null, profile = null] = row ?? [];
  return {
    id,
    ipsecServerId,
    state: state ?? 'unknown',
    nextAt: nextAt ? Number(nextAt) : Number.NaN,
    lastCode,
    profile: profile || DEFAULT_PROFILE,
  };
}
const SUBMIT_CHUNK = 100;
/** The outcome of a target whose change the orchestrator refused to take (e.g. no secret key). */
const REFUSED = 'refused';
/**
 * Outcomes that count against maxErrors. Not `cancelled`: a change an operator took out of the
 * rollout was neither applied nor refused, and skipping one server must not halt the rest.
 */
const ERROR_OUTCOMES = new Set(['failed', 'rejected', 'expired', REFUSED]);

/**
 * The `run` job of a rollout: submits the targets planned to run (RUN_VERDICTS) as ordinary changes (same lanes,
 * same pipeline) under the rollout's rate control, and follows them by reading their states every
 * `pollMs`. Everything it decides from is in Redis (the changes it submitted, their outcomes, the
 * batch it paused or baked before), and each submission is idempotent per target
 * (Changes.submit), so a job resumed after its worker died, or woken after it parked (Parked),
 * picks up where the last run left and submits nothing twice.
 */
export async function runRollout(
  rollouts: Rollouts,
  rolloutId: string,
  options: ControllerOptions,
): Promise<ControllerResult> {
  const { redis, keys, changes } = rollouts.deps;
  const rolloutKey = keys.rollout(rolloutId);
  const { signal } = options;
  const wait = (ms: number) => sleep(ms, undefined, { signal }).catch(() => undefined);
  const parkMs = options.parkMs ?? 60_000;
  const initial = await rollouts.get(rolloutId);
  if (initial.state === 'approved') {
    await rollouts
      .transition(rolloutId, ['approved'], 'running', 'start', {
        events: [encodeRolloutEvent(rolloutId, 'system', 'rollout_started', undefined, Date.now())],
      })
      .catch((error) => {
        if (!(error instanceof RolloutStateError)) throw error;
      });
  }
  const { settings, actor } = initial;

  const plan = await rollouts.plan(rolloutId);
  const runnable = new Set(plan.filter((entry) => RUN_VERDICTS.has(entry.kind)).map((entry) => entry.index));
  const toRun = (await rollouts.targets(rolloutId)).filter((target) => runnable.has(target.index));
  const total = toRun.length;
  const maxErrors = errorThreshold(settings.maxErrors, total);
  const ranges = 'batches' in settings.strategy ? batchRanges(settings.strategy.batches, total) : undefined;
  /** Whether the rollout pauses when `done` batches have finished (`every`, or `first` after one). */
  const pausesAfter = (done: number) =>
    settings.pause === 'every' || (settings.pause === 'first' && done === 1);
  const limit =
    'concurrency' in settings.strategy ? concurrencyLimit(settings.strategy.concurrency, total) : 0;

  const submitted = new Map<number, string>(); // position in toRun → change id
  const outcomes = new Map<number, string>(); // position → terminal change state
  const byIndex = new Map(toRun.map((target, position) => [target.index, position]));
  for (const [index, changeId] of await rollouts.changeIds(rolloutId)) {
    const position = byIndex.get(index);
    if (position !== undefined) submitted.set(position, changeId);
  }
  for (const [index, state] of Object.entries(await redis.hgetall(keys.rolloutOutcomes(rolloutId)))) {
    const position = byIndex.get(Number(index));
    if (position !== undefined) outcomes.set(position, state);
  }

  /**
   * Submits one target's change, only while the rollout is `running`: submit.lua checks the
   * rollout hash and creates the change (recording it in the rollout's changes) in one script, so
   * a pause or cancel acknowledged before it leaves nothing submitted. Answers false when the
   * script held the change back that way; the caller stops submitting and reads the state again.
   */
  const submit = async (position: number): Promise<boolean> => {
    const target = toRun[position] as RunnableTarget;
    let changeId: string;
    try {
      const { change } = await changes.submit(
        {
          ipsecServerId: target.ipsecServerId,
          regionId: target.regionId,
          ...(target.profile !== DEFAULT_PROFILE ? { profile: target.profile } : {}),
          params: target.params,
          actor,
          note: `rollout ${rolloutId}`,
        },
        { preApproved: true, rollout: { id: rolloutId, targetIndex: target.index } },
      );
      changeId = change.id;
    } catch (error) {
      if (error instanceof RolloutNotRunningError) return false;
      // Refused at the border (it will be refused again): an error outcome, not a job to retry.
      // Recorded without checking that the rollout still runs: a pause or cancel acknowledged
      // since the state was read is not undone by it (no change exists, nothing reached the
      // cloud), and a resume would only meet the same refusal.
      if (!(error instanceof IpsecFleetError) || error instanceof UnexpectedScriptResultError) throw error;
      options.log.warn({ err: error, rolloutId, target: target.index }, 'rollout change refused');
      submitted.set(position, '');
      outcomes.set(position, REFUSED);
      await redis.hset(keys.rolloutOutcomes(rolloutId), String(target.index), REFUSED);
      return true;
    }
    // submit.lua recorded it in the rollout's changes already, in the script that created it.
    submitted.set(position, changeId);
    return true;
  };
  /**
   * Submits the positions a chunk at a time (a batch may be thousands of targets), stopping at
   * the first chunk in which the rollout left `running`; answers the positions not submitted.
   */
  const submitAll = async (positions: number[]): Promise<number[]> => {
    for (let i = 0; i < positions.length; i += SUBMIT_CHUNK) {
      const chunk = positions.slice(i, i + SUBMIT_CHUNK);
      const sent = await Promise.all(chunk.map(submit));
      if (sent.includes(false)) {
        return [...chunk.filter((_position, j) => !sent[j]), ...positions.slice(i + SUBMIT_CHUNK)];
      }
    }
    return [];
  };
  // Refused submissions have an outcome and no change.
  for (const position of outcomes.keys()) if (!submitted.has(position)) submitted.set(position, '');

  // maxChangesPerMinute: a sliding window over the times this controller started changes. It
  // lives here rather than in a shared Redis structure because one controller alone submits a
  // rollout's changes; the start times are kept in the rollout hash (`rateStarts`, written before
  // the changes are submitted), so a controller resumed by another worker honours the window its
  // predecessor opened. A crash between the write and the submissions only leaves slots unused.
  const rateLimit = settings.maxChangesPerMinute;
  const rateWindowMs = options.rateWindowMs ?? 60_000;
  let starts: number[] = JSON.parse((await redis.hget(rolloutKey, 'rateStarts')) ?? '[]') as number[];
  /** Keeps the positions the window allows now, records their start, and says when more may go. */
  const admit = async (positions: number[]): Promise<{ admitted: number[]; waitMs: number }> => {
    if (rateLimit === undefined || positions.length === 0) return { admitted: positions, waitMs: 0 };
    const now = Date.now();
    const window = startWindow(starts, rateLimit, rateWindowMs, now);
    const admitted = positions.slice(0, window.allowed);
    starts = [...window.recent, ...admitted.map(() => now)];
    if (admitted.length > 0) await redis.hset(rolloutKey, 'rateStarts', JSON.stringify(starts));
    const freesAt = startWindow(starts, rateLimit, rateWindowMs, now).freesAt;
    const waitMs = admitted.length < positions.length ? Math.max(1, (freesAt ?? now) - now) : 0;
    return { admitted, waitMs };
  };
  /** Gives back the window slots of admitted positions a pause or cancel held back (the last ones). */
  const release = async (count: number) => {
    if (rateLimit === undefined || count === 0) return;
    starts = starts.slice(0, Math.max(0, starts.length - count));
    await redis.hset(rolloutKey, 'rateStarts', JSON.stringify(starts));
  };

  /**
   * What each change waits for: itself when it backs off, and for one queued behind another
   * change in its server's lane, that lane's head (someone else's change, backing off on a busy
   * gateway or a financial lock, holds it as long). Undefined when one of them may run now: a
   * queued change at its lane's head, or behind a head that does not back off.
   */
  const waitedFor = async (followed: Followed[]): Promise<Followed[] | undefined> => {
    const queued = followed.filter((change) => change.state === 'queued');
    if (queued.length === 0) return followed;
    const lanes = redis.pipeline();
    for (const change of queued) lanes.lindex(keys.lane(change.ipsecServerId), 0);
    const heads = ((await lanes.exec()) ?? []).map(([, head]) => head as string | null);
    const headOf = new Map<string, string>();
    for (let i = 0; i < queued.length; i++) {
      const { id } = queued[i] as Followed;
      const head = heads[i];
      // At its lane's head (runnable), or no longer in its lane (it has just ended).
      if (!head || head === id) return undefined;
      headOf.set(id, head);
    }
    const headIds = [...new Set(headOf.values())];
    const reads = redis.pipeline();
    for (const head of headIds) reads.hmget(keys.change(head), ...FOLLOWED_FIELDS);
    const rows = (await reads.exec()) ?? [];
    const headChanges = new Map(
      headIds.map((head, i) => [head, followedOf(head, '', rows[i]?.[1] as (string | null)[] | undefined)]),
    );
    if ([...headChanges.values()].some((head) => head.state !== 'backing_off')) return undefined;
    return followed.map((change) => headChanges.get(headOf.get(change.id) ?? '') ?? change);
  };

  /**
   * Called where the controller has nothing to submit and waits for its changes in flight (paused,
   * a batch in flight, concurrency full, everything submitted, cancelled): parks it when every one
   * of them backs off for longer than parkMs, itself or the change ahead of it in its lane
   * (waitedFor), and otherwise waits a poll (answering undefined). A financially locked account
   * holds its changes for minutes to hours, each until its own next run (nextAt) or, for one
   * waiting on the account's open circuit, until the circuit's probe runs again (`until`); polling
   * them, fifty rollouts on a locked account would hold every controller slot for as long.
   *
   * Parked for parkMs, not until the earliest next run: a change may also end before it without
   * waking the controller (a user cancels it; its circuit's probe is cancelled, or ends, and the
   * waiters go at once), and parkMs bounds how late the rollout learns that, as it bounds a lost
   * wake. Woken, the controller reads everything again, and parks again while the wait goes on;
   * the last parkMs before a next run it spends polling on its slot, as it spends a short bake.
   */
  const waitOrPark = async (state: RolloutState, inFlight: Followed[]): Promise<Parked | undefined> => {
    const followed =
      inFlight.length > 0 &&
      inFlight.every((change) => change.state === 'backing_off' || change.state === 'queued')
        ? await waitedFor(inFlight)
        : undefined;
    if (followed) {
      // One read per account whose circuit a change waits on (a rollout spans few accounts).
      const waitedOn = [
        ...new Set(
          followed.filter((change) => change.lastCode === CIRCUIT_OPEN).map((change) => change.profile),
        ),
      ];
      const untils = await Promise.all(waitedOn.map((profile) => redis.hget(keys.circuit(profile), 'until')));
      const circuitUntil = new Map(waitedOn.map((profile, i) => [profile, Number(untils[i] ?? Number.NaN)]));
      const now = Date.now();
      // A circuit waiter's nextAt is not its next run (acquire.lua leaves an earlier backoff's); a
      // closed circuit (no `until`) means its waiters go now. NaN (unknown) never parks.
      const waitsLong = followed.every((change) => {
        const nextRun = change.lastCode === CIRCUIT_OPEN ? circuitUntil.get(change.profile) : change.nextAt;
        return nextRun !== undefined && nextRun - now > parkMs;
      });
      if (waitsLong) return { until: now + parkMs, state };
    }
    await wait(options.pollMs);
    return undefined;
  };

  // A cancelled rollout: whether the next read of its changes follows a cancel of the waiting ones.
  let readAfterCancel = false;
  // Whether the queued changes of an earlier run were given their jobs (see below).
  let lanesChecked = false;
  for (;;) {
    if (signal?.aborted) return 'stopped';
    const [stateValue, pausedBefore, bakedBefore, bakeUntil] = await redis.hmget(
      rolloutKey,
      'state',
      'pausedBefore',
      'bakedBefore',
      'bakeUntil',
    );
    const state = stateValue as RolloutState | null;
    if (state === null) return 'ended';

    // Follow the changes in flight.
    const inFlight = [...submitted].filter(([position]) => !outcomes.has(position));
    const byState: Record<string, number> = {};
    const followed: Followed[] = [];
    if (inFlight.length > 0) {
      const pipeline = redis.pipeline();
      for (const [, changeId] of inFlight) pipeline.hmget(keys.change(changeId), ...FOLLOWED_FIELDS);
      const records = (await pipeline.exec()) ?? [];
      for (let i = 0; i < inFlight.length; i++) {
        const [position, changeId] = inFlight[i] as [number, string];
        const change = followedOf(
          changeId,
          (toRun[position] as RunnableTarget).ipsecServerId,
          records[i]?.[1] as (string | null)[] | undefined,
        );
        const current = change.state;
        if (isTerminalChange(current)) {
          outcomes.set(position, current);
          await redis.hset(
            keys.rolloutOutcomes(rolloutId),
            String((toRun[position] as RunnableTarget).index),
            current,
          );
        } else {
          byState[current] = (byState[current] ?? 0) + 1;
          followed.push(change);
        }
      }
    }
    if (!lanesChecked) {
      // Changes.submit adds a change's job after the script that created and recorded it: a run
      // that died between the two (kill -9 mid-chunk) left changes queued at their lane's head
      // with no job, which only the lane repair (every few minutes) would find. Adding it again
      // is free for one that has it.
      const queued = followed.filter((change) => change.state === 'queued');
      for (let i = 0; i < queued.length; i += SUBMIT_CHUNK) {
        await Promise.all(
          queued.slice(i, i + SUBMIT_CHUNK).map((change) => changes.makeHeadRunnable(change.ipsecServerId)),
        );
      }
      lanesChecked = true;
    }
    let succeeded = 0;
    let errors = 0;
    for (const outcome of outcomes.values()) {
      byState[outcome] = (byState[outcome] ?? 0) + 1;
      if (outcome === 'succeeded') succeeded++;
      else if (ERROR_OUTCOMES.has(outcome)) errors++;
    }
    const running = submitted.size - outcomes.size;
    const firstUnsubmitted = toRun.findIndex((_target, position) => !submitted.has(position));
    const batch = ranges
      ? ranges.findIndex(([start, end]) => firstUnsubmitted >= start && firstUnsubmitted < end)
      : -1;
    const progress: Record<string, string> = {
      total: String(total),
      submitted: String(submitted.size),
      inFlight: String(running),
      succeeded: String(succeeded),
      errors: String(errors),
      byState: JSON.stringify(byState),
    };
    await redis.hset(rolloutKey, progress);

    if (state === 'cancelled') {
      // Ended by a user: cancel what still waits, and follow the rest until it finishes. The
      // states are read again after the cancel before they are waited on: what it left backing
      // off could not be cancelled (an apply of it may have gone out: it is retried and verified)
      // and may park like any change, but one it cancelled must not keep the job parked.
      if (running === 0) return 'ended';
      // Only while one of them waits in a state a cancel takes: a sweep reads and tries every
      // change the rollout submitted, and running ones would only refuse it, poll after poll.
      if (
        !readAfterCancel &&
        followed.some((change) => CANCELLABLE_STATES.includes(change.state as ChangeState))
      ) {
        await rollouts.cancelWaitingChanges(rolloutId, 'system');
        readAfterCancel = true;
        continue;
      }
      readAfterCancel = false;
      const parked = await waitOrPark(state, followed);
      if (parked) return parked;
      continue;
    }
    if (!ACTIVE.includes(state)) return 'ended';

    const now = Date.now();
    if (errors > maxErrors || firstUnsubmitted < 0) {
      // The error threshold is exceeded (no new change starts) or every change was submitted.
      if (running > 0) {
        const parked = await waitOrPark(state, followed);
        if (parked) return parked;
        continue;
      }
      const halted = errors > maxErrors;
      await rollouts
        .transition(rolloutId, ACTIVE, halted ? 'halted' : 'completed', 'finish', {
          fields: {
            finishedAt: String(now),
            reason: halted ? `${errors} errors exceeded maxErrors ${maxErrors}` : '',
          },
          events: [
            encodeRolloutEvent(
              rolloutId,
              'system',
              halted ? 'rollout_halted' : 'rollout_completed',
              { succeeded, errors, maxErrors },
              now,
            ),
          ],
        })
        .catch((error) => {
          if (!(error instanceof RolloutStateError)) throw error;
        });
      continue;
    }
    if (state === 'paused') {
      // Paused by a user where the rollout asked for a pause (its batch done, the next one not
      // started): that pause is the one asked for, so the resume goes on instead of pausing again.
      // This also settles a user's pause that won the race with the controller's own.
      const pausePoint =
        ranges && batch > 0 && running === 0 && !submitted.has((ranges[batch] as [number, number])[0]);
      if (pausePoint && pausesAfter(batch) && Number(pausedBefore ?? 0) < batch)
        await redis.hset(rolloutKey, 'pausedBefore', String(batch));
      // Changes in flight are followed to their end (progress, outcomes); then only a person can
      // move the rollout on.
      if (running === 0) return { until: Date.now() + parkMs, state };
      const parked = await waitOrPark(state, followed);
      if (parked) return parked;
      continue;
    }

    if (ranges) {
      const [start, end] = ranges[batch] as [number, number];
      // A batch the rate limit started only in part goes on as the window allows.
      const started = submitted.has(start);
      // A batch starts when the one before it has finished, baked, and (if asked) been resumed.
      if (!started && running > 0) {
        const parked = await waitOrPark(state, followed);
        if (parked) return parked;
        continue;
      }
      if (batch > 0 && !started) {
        if (settings.bakeMs > 0 && Number(bakedBefore ?? 0) < batch) {
          await redis.hset(rolloutKey, {
            bakedBefore: String(batch),
            bakeUntil: String(now + settings.bakeMs),
          });
          continue;
        }
        if (Number(bakeUntil ?? 0) > now) {
          // Nothing is in flight while a batch bakes (it started once the batch had finished).
          if (Number(bakeUntil) - now > parkMs) return { until: Number(bakeUntil), state };
          await wait(Math.min(options.pollMs, Number(bakeUntil) - now));
          continue;
        }
        if (pausesAfter(batch) && Number(pausedBefore ?? 0) < batch) {
          await rollouts
            .transition(rolloutId, ['running'], 'paused', 'pause', {
              fields: { reason: `paused after batch ${batch}`, pausedBefore: String(batch) },
              events: [encodeRolloutEvent(rolloutId, 'system', 'rollout_paused', { afterBatch: batch }, now)],
            })
            .catch((error) => {
              if (!(error instanceof RolloutStateError)) throw error;
            });
          continue;
        }
      }
      await redis.hset(rolloutKey, 'currentBatch', String(batch + 1));
      const positions = [];
      for (let position = start; position < end; position++)
        if (!submitted.has(position)) positions.push(position);
      const { admitted, waitMs } = await admit(positions);
      const held = await submitAll(admitted);
      if (!started && submitted.has(start)) {
        options.log.info({ rolloutId, batch: batch + 1, size: end - start }, 'rollout batch started');
      }
      if (held.length > 0) {
        // Paused or cancelled mid-batch: read the state again (what was submitted is followed).
        await release(held.length);
        continue;
      }
      if (waitMs > 0) await wait(Math.min(options.pollMs, waitMs));
      continue;
    }

    // Concurrency: keep the ramped number of changes in flight.
    const room = rampedConcurrency(limit, outcomes.size) - running;
    if (room <= 0) {
      const parked = await waitOrPark(state, followed);
      if (parked) return parked;
      continue;
    }
    const positions = [];
    for (let position = firstUnsubmitted; position < total && positions.length < room; position++) {
      if (!submitted.has(position)) positions.push(position);
    }
    // Submitted now, or held back by the rate window (which frees within rateWindowMs): a poll.
    const { admitted } = await admit(positions);
    await release((await submitAll(admitted)).length);
    await wait(options.pollMs);
  }
}

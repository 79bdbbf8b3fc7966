import { createHash } from 'node:crypto';

/** A submitter's own key (an Idempotency-Key) as key-name text: hashed, so any bytes will do. */
const submitterKey = (actor: string, key: string) =>
  createHash('sha256').update(`${actor}\n${key}`).digest('hex');

/**
 * The one place Redis key names are built (as BullMQ's QueueKeys). Every key carries the same
 * hash tag, `{prefix}`, so that each Lua script's keys share one slot on Redis Cluster; BullMQ's
 * own keys use the same tag as their prefix.
 */
export class OrchestratorKeys {
  readonly tag: string;
  readonly changes: string;
  readonly audit: string;
  readonly workers: string;
  readonly rollouts: string;

  constructor(readonly prefix: string) {
    this.tag = `{${prefix}}`;
    this.changes = `${this.tag}:changes`;
    this.audit = `${this.tag}:audit`;
    this.workers = `${this.tag}:workers`;
    this.rollouts = `${this.tag}:rollouts`;
  }

  change(changeId: string): string {
    return `${this.tag}:change:${changeId}`;
  }

  lane(ipsecServerId: string): string {
    return `${this.tag}:lane:${ipsecServerId}`;
  }

  /** SCAN pattern of every lane, for the rare repair sweep. */
  get lanePattern(): string {
    return `${this.tag}:lane:*`;
  }

  lock(ipsecServerId: string): string {
    return `${this.tag}:lock:${ipsecServerId}`;
  }

  serverChanges(ipsecServerId: string): string {
    return `${this.tag}:server:${ipsecServerId}:changes`;
  }

  /**
   * A submitter's Idempotency-Key for a change: per submitter, as a rollout's is, so one
   * submitter's key never answers another's request with a change that is not theirs (nor a 409
   * for a key they never used). Hashed: any bytes are allowed, none reach a key name.
   */
  idempotency(actor: string, idempotencyKey: string): string {
    return `${this.tag}:idem:${submitterKey(actor, idempotencyKey).slice(0, 32)}`;
  }

  /**
   * A submitter's Idempotency-Key of `POST /v1/rollouts`: the hash of the body it came with and
   * the id its rollout is (to be) created under.
   */
  rolloutIdempotency(actor: string, idempotencyKey: string): string {
    return `${this.tag}:rollout-idempotency:${submitterKey(actor, idempotencyKey)}`;
  }

  /** finish.lua's KEYS, in its header's order, for a change of `profile` on its server. */
  finishKeys(changeId: string, ipsecServerId: string, profile: string): string[] {
    return [
      this.change(changeId),
      this.lane(ipsecServerId),
      this.lock(ipsecServerId),
      this.audit,
      this.circuit(profile),
      this.circuitWaiters(profile),
      this.circuitRelease(profile),
    ];
  }

  circuit(account: string): string {
    return `${this.tag}:circuit:${account}`;
  }

  /** `circuit(account)` + `:waiters`: acquire.lua builds both from `circuit('')` and a profile. */
  circuitWaiters(account: string): string {
    return `${this.tag}:circuit:${account}:waiters`;
  }

  /** The waiters the account's last probe released, for a resent finish to wake again. */
  circuitRelease(account: string): string {
    return `${this.tag}:circuit:${account}:release`;
  }

  rollout(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}`;
  }

  /** A rollout's targets as given: field = target index, value = JSON (Psk sealed). */
  rolloutTargets(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}:targets`;
  }

  /**
   * A rollout's targets while its creator writes them, a few hundred per command, before the
   * create script renames the key to rolloutTargets: one creator's own (`nonce`), so that two
   * creating the same rollout never mix their writes.
   */
  rolloutTargetsStaging(rolloutId: string, nonce: string): string {
    return `${this.tag}:rollout:${rolloutId}:targets:staging:${nonce}`;
  }

  /** The plan report: field = target index, value = JSON of the target's verdict. */
  rolloutPlan(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}:plan`;
  }

  /**
   * The idempotency record of a rollout's change for one target: apart from the keys clients
   * choose, so that no Idempotency-Key a client sends can stand for, or block, a rollout's change.
   */
  rolloutChangeIdempotency(rolloutId: string, targetIndex: number): string {
    return `${this.tag}:rollout:${rolloutId}:idem:${targetIndex}`;
  }

  /** The changes a rollout submitted: field = target index, value = change id. */
  rolloutChanges(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}:changes`;
  }

  /** Terminal states of a rollout's changes: field = target index, value = change state. */
  rolloutOutcomes(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}:outcomes`;
  }

  /** Distinct approvers of a rollout. */
  rolloutApprovals(rolloutId: string): string {
    return `${this.tag}:rollout:${rolloutId}:approvals`;
  }

  /** The API rate bucket of one access key and action, shared by every worker (rate-take.lua). */
  rate(accessKeyId: string, action: string): string {
    return `${this.tag}:rate:${accessKeyId}:${action}`;
  }
}

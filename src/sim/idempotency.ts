/**
 * ClientToken memory: what makes a retried apply safe (DESIGN invariant 4).
 *
 * Only successful applies are remembered. A call that failed (Configuring, FinancialLocked,
 * a validation error...) changed nothing, so its token stays free: the caller's retry with the
 * same token must get a real attempt, not a replay of the failure, or backing off on
 * VpnGateway.Configuring could never succeed. Dry runs neither consult nor record tokens, for the
 * same reason: they change nothing, and a pipeline that dry-runs again before retrying an apply
 * must not be refused.
 */

export const CLIENT_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

export interface RememberedApply {
  /** The request's business parameters as received, in name order (ClientToken and DryRun left out). */
  paramsKey: string;
  requestId: string;
  body: Record<string, unknown>;
  at: number;
}

export type TokenLookup =
  | { kind: 'new' }
  | { kind: 'replay'; remembered: RememberedApply }
  | { kind: 'mismatch'; remembered: RememberedApply };

export class ClientTokenStore {
  // Insertion-ordered, so the oldest entries come first when the cap or the TTL evicts.
  private readonly entries = new Map<string, RememberedApply>();

  constructor(
    private readonly ttlMs = CLIENT_TOKEN_TTL_MS,
    private readonly maxEntries = 1_000_000,
  ) {}

  lookup(accessKeyId: string, clientToken: string, paramsKey: string, now: number): TokenLookup {
    const key = storeKey(accessKeyId, clientToken);
    const remembered = this.entries.get(key);
    if (!remembered) return { kind: 'new' };
    if (now - remembered.at >= this.ttlMs) {
      this.entries.delete(key);
      return { kind: 'new' };
    }
    return remembered.paramsKey === paramsKey
      ? { kind: 'replay', remembered }
      : { kind: 'mismatch', remembered };
  }

  remember(accessKeyId: string, clientToken: string, entry: RememberedApply): void {
    this.evict(entry.at);
    this.entries.set(storeKey(accessKeyId, clientToken), entry);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size < this.maxEntries && now - entry.at < this.ttlMs) break;
      this.entries.delete(key);
    }
  }
}

function storeKey(accessKeyId: string, clientToken: string): string {
  return `${accessKeyId}\n${clientToken}`;
}

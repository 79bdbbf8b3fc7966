/**
 * The pipeline's verify step against a cloud whose reads lag its writes (the simulator's
 * staleReadMs): it reads again until the server shows the requested fields, within the policy's
 * bound (verifyAttempts reads, verifyIntervalMs apart), and a change whose config never shows
 * ends `failed` with VerifyMismatch after exactly one apply.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const VERIFY_INTERVAL_MS = 50;
const requested = { LocalSubnet: '172.16.77.0/24' };

/** ListIpsecServers calls the simulator answered: one `before` snapshot, then the verify reads. */
function listCalls(h: Harness): number {
  return h.sim.stats().byAction.ListIpsecServers ?? 0;
}

describe('verify after apply', () => {
  it('reads again while the listing lags, and succeeds once it shows the change', async () => {
    // Stale for eight intervals: the first verify read, moments after the apply, sees the old
    // record, and a read well inside the bound (twenty reads) the new one.
    harness = await startHarness({
      sim: { faults: { configuringMs: 0, staleReadMs: 8 * VERIFY_INTERVAL_MS } },
      policy: { verifyAttempts: 20, verifyIntervalMs: VERIFY_INTERVAL_MS },
    });
    const change = await submitTo(harness, 0, requested);
    expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');

    const stats = harness.sim.stats();
    expect(stats.applies).toBe(1);
    const verifyReads = listCalls(harness) - 1;
    expect(verifyReads).toBeGreaterThan(1);
    expect(verifyReads).toBeLessThan(20);
    const done = await harness.orchestrator.changes.get(change.id);
    expect(done.after).toMatchObject(requested);
    expect(done.before?.LocalSubnet).not.toBe(requested.LocalSubnet);
  });

  it('ends `failed` with VerifyMismatch when the listing lags past the bound, after one apply', async () => {
    const attempts = 4;
    harness = await startHarness({
      sim: { faults: { configuringMs: 0, staleReadMs: 600_000 } },
      policy: { verifyAttempts: attempts, verifyIntervalMs: VERIFY_INTERVAL_MS },
    });
    const change = await submitTo(harness, 0, requested);
    expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('failed');

    const done = await harness.orchestrator.changes.get(change.id);
    expect(done.lastCode).toBe('VerifyMismatch');
    const stats = harness.sim.stats();
    expect(stats.applies).toBe(1);
    expect(stats.dryRuns).toBe(1);
    expect(listCalls(harness) - 1).toBe(attempts);
    // The apply did happen: the cloud holds the change, only its reads do not show it yet.
    const server = harness.sim.server(change.ipsecServerId);
    expect(server?.history.map((entry) => entry.clientToken)).toEqual([change.clientToken]);
    expect(server?.config.LocalSubnet).toBe(requested.LocalSubnet);
    const events = await harness.orchestrator.audit.forChange(change.id);
    expect(events.map((event) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'failed',
    ]);
    expect(events.at(-1)).toMatchObject({ code: 'VerifyMismatch' });
  });
});

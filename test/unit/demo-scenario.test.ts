import { describe, expect, it } from 'vitest';
import { countStates, describeCounts, doneCount, progressBar } from '../../src/demo/progress.js';
import { MIN_SERVERS, overlappingSubnet, planScenario } from '../../src/demo/scenario.js';
import { formatSummary, summaryRows } from '../../src/demo/summary.js';
import { mutableParamsSchema } from '../../src/ipsec/update-params.js';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { cidrsOverlap } from '../../src/sim/rules.js';

const servers = (count: number) =>
  Array.from({ length: count }, (_, index) => ({
    ipsecServerId: `iss-${String(index).padStart(3, '0')}`,
    regionId: index % 2 ? 'cn-hangzhou' : 'cn-shanghai',
  }));

describe('demo scenario', () => {
  it('plans one change per server plus the racing one, each valid for the API', () => {
    const scenario = planScenario(servers(50), '10.2.0.0/16');
    expect(scenario.changes).toHaveLength(51);
    for (const change of scenario.changes) {
      expect(mutableParamsSchema.safeParse(change.params).success, JSON.stringify(change)).toBe(true);
    }
    const kinds = scenario.changes.map((change) => change.kind);
    for (const kind of ['psk', 'psk-locked', 'subnet', 'ike-upgrade', 'race-1', 'race-2', 'bad-subnet']) {
      expect(kinds).toContain(kind);
    }
    expect(scenario.changes.map((change) => change.seq)).toEqual(
      scenario.changes.map((_, index) => index + 1),
    );
  });

  it('races two changes on one server, the first submitted first', () => {
    const { changes, raceServer } = planScenario(servers(MIN_SERVERS), '10.2.0.0/16');
    const race = changes.filter((change) => change.ipsecServerId === raceServer.ipsecServerId);
    expect(race.map((change) => change.kind)).toEqual(['race-1', 'race-2']);
    expect(race.every((change) => change.expected === 'succeeded')).toBe(true);
  });

  it('expects exactly the overlapping LocalSubnet to be rejected', () => {
    const { changes, illegalServer } = planScenario(servers(12), '10.2.0.0/16');
    const rejected = changes.filter((change) => change.expected === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.ipsecServerId).toBe(illegalServer.ipsecServerId);
    expect(cidrsOverlap(String(rejected[0]?.params.LocalSubnet), '10.2.0.0/16')).toBe(true);
    // The other subnets stay clear of every generated pool (10/8, 172.16/12, 100.64/10).
    for (const change of changes.filter((c) => c.kind === 'subnet' || c.kind.startsWith('race'))) {
      for (const subnet of String(change.params.LocalSubnet).split(',')) {
        for (const pool of ['10.0.0.0/8', '172.16.0.0/12', '100.64.0.0/10']) {
          expect(cidrsOverlap(subnet, pool)).toBe(false);
        }
      }
    }
  });

  it('builds an overlapping subnet for wide and narrow pools', () => {
    expect(overlappingSubnet('10.7.0.0/16')).toBe('10.7.0.0/24');
    expect(overlappingSubnet('172.16.3.0/24')).toBe('172.16.3.0/24');
    expect(overlappingSubnet('10.0.1.16/28')).toBe('10.0.1.16/28');
  });

  it('refuses a fleet too small for the story', () => {
    expect(() => planScenario(servers(MIN_SERVERS - 1), '10.2.0.0/16')).toThrow(RangeError);
  });
});

describe('demo progress and summary', () => {
  it('counts states and draws a bar', () => {
    const counts = countStates(['succeeded', 'succeeded', 'rejected', 'backing_off', 'queued'], 5);
    expect(doneCount(counts)).toBe(3);
    expect(describeCounts(counts)).toBe('succeeded 2 · rejected 1 · queued 1 · backing_off 1');
    expect(progressBar(3, 5, 10)).toBe('[######----]');
  });

  it('lists every planned change with expected and actual state', () => {
    const { changes } = planScenario(servers(MIN_SERVERS), '10.2.0.0/16');
    const ids = new Map(changes.map((change) => [change.seq, `chg-${change.seq}`]));
    const latest = new Map<string, ChangeView>();
    latest.set('chg-1', {
      id: 'chg-1',
      state: 'succeeded',
      runs: 4,
      lastCode: 'VpnGateway.FinancialLocked',
    } as ChangeView);
    const rows = summaryRows(changes, ids, latest);
    expect(rows).toHaveLength(changes.length);
    expect(rows[0]).toMatchObject({ change: 'chg-1', actual: 'succeeded', attempts: 4 });
    expect(rows[1]).toMatchObject({ change: 'chg-2', actual: 'missing', lastCode: '-' });
    const table = formatSummary(rows).split('\n');
    expect(table[0]).toMatch(/^change\s+server\s+kind\s+expected\s+actual\s+attempts\s+last code$/);
    expect(table).toHaveLength(changes.length + 2);
  });
});

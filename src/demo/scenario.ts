import { randomBytes } from 'node:crypto';

/**
 * What the demo asks of the fleet: a realistic morning of changes, each with the end state it
 * must reach. Pure (apart from the random Psks), so the plan can be read and tested on its own.
 */

export interface DemoServer {
  ipsecServerId: string;
  regionId: string;
}

export type ExpectedState = 'succeeded' | 'rejected';

/** Short labels shown in the summary table; LEGEND explains them. */
export type ChangeKind = 'psk' | 'psk-locked' | 'subnet' | 'ike-upgrade' | 'race-1' | 'race-2' | 'bad-subnet';

export const KIND_LEGEND: Record<ChangeKind, string> = {
  psk: 'PSK rotation (Psk + PskEnabled)',
  'psk-locked': 'PSK rotation on a server whose account is FinancialLocked until the demo lifts the lock',
  subnet: 'LocalSubnet change (one more VPC network)',
  'ike-upgrade': 'IKE upgrade: IkeConfig ikev2/aes256/sha256/group14 + IpsecConfig aes256/sha256/group14',
  'race-1': 'first of two changes racing for one server',
  'race-2': 'second of the two: must run after the first, and win',
  'bad-subnet': 'LocalSubnet overlapping the server’s ClientIpPool: the dry run must refuse it',
};

export interface PlannedChange {
  /** The change's place in the plan, 1-based. */
  seq: number;
  kind: ChangeKind;
  ipsecServerId: string;
  regionId: string;
  params: Record<string, unknown>;
  expected: ExpectedState;
  note: string;
}

export interface Scenario {
  changes: PlannedChange[];
  /** The server answered VpnGateway.FinancialLocked until the demo lifts the lock. */
  lockedServer: DemoServer;
  /** The server two changes race for (race-1 is submitted first and must apply first). */
  raceServer: DemoServer;
  illegalServer: DemoServer;
}

/** The fewest servers that hold one of each: locked, race, illegal, IKE, PSK, subnet. */
export const MIN_SERVERS = 6;

export const IKE_UPGRADE = {
  IkeConfig: { IkeVersion: 'ikev2', IkeEncAlg: 'aes256', IkeAuthAlg: 'sha256', IkePfs: 'group14' },
  IpsecConfig: { IpsecEncAlg: 'aes256', IpsecAuthAlg: 'sha256', IpsecPfs: 'group14' },
} as const;

/** A fresh pre-shared key: 24 printable ASCII characters (the API allows 1-100). */
export function newPsk(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * A LocalSubnet that overlaps `clientIpPool` (a /24 at the start of the pool, or the pool itself
 * when it is narrower): the cloud must answer IllegalParam.LocalSubnet, so the change ends
 * `rejected` at its dry run, before anything is applied.
 */
export function overlappingSubnet(clientIpPool: string): string {
  const [network, prefix] = clientIpPool.split('/');
  const bits = Number(prefix);
  if (!network || !Number.isInteger(bits)) return clientIpPool;
  return bits >= 24 ? clientIpPool : `${network}/24`;
}

/**
 * The plan for `servers` (at least MIN_SERVERS). Server 0 is financially locked, server 1 gets two
 * racing changes, server 2 an illegal LocalSubnet (given its ClientIpPool), server 3 an IKE
 * upgrade; the rest cycle through PSK rotations, subnet changes and IKE upgrades.
 */
export function planScenario(
  servers: readonly DemoServer[],
  illegalServerPool: string,
  psk: () => string = newPsk,
): Scenario {
  if (servers.length < MIN_SERVERS) {
    throw new RangeError(`the demo needs at least ${MIN_SERVERS} servers (got ${servers.length})`);
  }
  const at = (index: number) => servers[index] as DemoServer;
  const changes: PlannedChange[] = [];
  const add = (server: DemoServer, kind: ChangeKind, params: Record<string, unknown>, note: string) => {
    changes.push({
      seq: changes.length + 1,
      kind,
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
      params,
      expected: kind === 'bad-subnet' ? 'rejected' : 'succeeded',
      note,
    });
  };

  add(at(0), 'psk-locked', { Psk: psk(), PskEnabled: true }, 'demo: PSK rotation behind a financial lock');
  add(
    at(1),
    'race-1',
    { LocalSubnet: '192.168.0.0/24,192.168.100.0/24' },
    'demo: race 1/2, add 192.168.100.0/24',
  );
  add(
    at(1),
    'race-2',
    { LocalSubnet: '192.168.0.0/24,192.168.100.0/24,192.168.101.0/24' },
    'demo: race 2/2, add 192.168.101.0/24 too',
  );
  add(
    at(2),
    'bad-subnet',
    { LocalSubnet: overlappingSubnet(illegalServerPool) },
    `demo: LocalSubnet overlapping ClientIpPool ${illegalServerPool}`,
  );
  add(at(3), 'ike-upgrade', structuredClone(IKE_UPGRADE), 'demo: IKE upgrade');
  for (let index = 4; index < servers.length; index++) {
    const server = at(index);
    switch (index % 5) {
      case 0:
      case 2:
        add(server, 'psk', { Psk: psk(), PskEnabled: true }, 'demo: PSK rotation');
        break;
      case 1:
      case 4:
        add(
          server,
          'subnet',
          { LocalSubnet: `192.168.0.0/24,192.168.${10 + (index % 80)}.0/24` },
          'demo: add a VPC network',
        );
        break;
      default:
        add(server, 'ike-upgrade', structuredClone(IKE_UPGRADE), 'demo: IKE upgrade');
    }
  }
  return { changes, lockedServer: at(0), raceServer: at(1), illegalServer: at(2) };
}

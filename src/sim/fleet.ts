import { ALNUM, LOWER_ALNUM, mixSeed, Prng } from './prng.js';
import { simPskLabel } from './psk-label.js';

/**
 * The simulated IPsec servers: their records (what ListIpsecServers shows), who owns them, and
 * what happened to them (history, configuring window).
 *
 * Generated fleets are a pure function of (seed, servers, regions, access keys): the same options
 * give the same ids, keys and addresses on every start, so test fixtures and recorded runs stay
 * valid. Defaults are the API reference's (IKEv2, main mode, aes/sha1/group2, 86400 s).
 */

export interface SimIkeConfig {
  IkeVersion: string;
  IkeMode: string;
  IkeEncAlg: string;
  IkeAuthAlg: string;
  IkePfs: string;
  IkeLifetime: number;
  LocalId?: string | undefined;
  RemoteId?: string | undefined;
}

export interface SimIpsecConfig {
  IpsecEncAlg: string;
  IpsecAuthAlg: string;
  IpsecPfs: string;
  IpsecLifetime: number;
}

/** The reference's defaults: LocalId is the gateway's public address, RemoteId nothing. */
export function defaultIkeConfig(internetIp: string): SimIkeConfig {
  return {
    IkeVersion: 'ikev2',
    IkeMode: 'main',
    IkeEncAlg: 'aes',
    IkeAuthAlg: 'sha1',
    IkePfs: 'group2',
    IkeLifetime: 86400,
    LocalId: internetIp,
  };
}

export function defaultIpsecConfig(): SimIpsecConfig {
  return { IpsecEncAlg: 'aes', IpsecAuthAlg: 'sha1', IpsecPfs: 'group2', IpsecLifetime: 86400 };
}

/** One server as ListIpsecServers returns it (the official SDK's model), plus its owner. */
export interface SimServerRecord {
  IpsecServerId: string;
  IpsecServerName: string;
  RegionId: string;
  VpnGatewayId: string;
  LocalSubnet: string;
  ClientIpPool: string;
  EffectImmediately: boolean;
  IkeConfig: SimIkeConfig;
  IpsecConfig: SimIpsecConfig;
  PskEnabled: boolean;
  Psk: string;
  InternetIp: string;
  CreationTime: string;
  MaxConnections: number;
  OnlineClientCount: number;
  MultiFactorAuthEnabled: boolean;
  IDaaSInstanceId?: string | undefined;
  ResourceGroupId: string;
  /** Not on the wire: the access key whose account holds the server. */
  ownerAccessKeyId: string;
}

/** A server's dry runs kept for tests to read: enough for a change's retries, bounded for a long run. */
export const DRY_RUNS_KEPT = 20;

export interface SimHistoryEntry {
  at: string;
  clientToken?: string;
  requestId: string;
  /** The parameters applied (or, for a dry run, checked), Psk as its fingerprint. */
  params: Record<string, unknown>;
}

export interface SimServerSummary {
  ipsecServerId: string;
  regionId: string;
  vpnGatewayId: string;
  ownerAccessKeyId: string;
  ipsecServerName: string;
}

/** A server as ListIpsecServers returns it (no owner field). */
export type ListedServer = Omit<SimServerRecord, 'ownerAccessKeyId'>;

export interface SimServerView {
  ipsecServerId: string;
  regionId: string;
  vpnGatewayId: string;
  ownerAccessKeyId: string;
  /** As ListIpsecServers returns it, with the Psk replaced by its fingerprint. */
  config: ListedServer;
  history: SimHistoryEntry[];
  /** The last DRY_RUNS_KEPT dry runs that passed, oldest first: what the cloud was asked to check. */
  dryRuns: SimHistoryEntry[];
  /** Present while the gateway answers VpnGateway.Configuring. */
  configuringUntil?: string;
}

/** A server while the simulator runs: its record plus what its calls did to it. */
export interface LiveServer {
  /** Whatever changes it must call recordChanged(). */
  record: SimServerRecord;
  history: SimHistoryEntry[];
  /** Passed dry runs, the last DRY_RUNS_KEPT; not kept in a fleet file (they changed nothing). */
  dryRuns: SimHistoryEntry[];
  /** Epoch ms until which updates are refused as Configuring; 0 when not configuring. */
  configuringUntil: number;
  /** Its place in the fleet, which listings follow. */
  readonly position: number;
  /** listedJson()'s text, kept until the record changes. */
  listedJson: string | undefined;
  /** Records from before applies that reads do not show yet, oldest first; undefined when none. */
  staleReads: StaleRead[] | undefined;
}

/** The record a lagging read shows of a server until `until` (epoch ms), and its listed JSON. */
export interface StaleRead {
  until: number;
  record: SimServerRecord;
  json: string | undefined;
}

export interface FleetSpec {
  seed: number;
  servers: number;
  regions: readonly string[];
  accessKeyIds: readonly string[];
}

const FLEET_STREAM = 1;
const MAX_CONNECTION_CHOICES = [5, 10, 20, 50, 100, 200, 500, 1000] as const;
// A fixed epoch keeps CreationTime reproducible; servers appear a minute apart after it.
const CREATION_EPOCH_MS = Date.UTC(2024, 0, 15, 8, 0, 0);

/**
 * A ClientIpPool no other generated server has: `10.N.0.0/16` for the first 256 (the shape the
 * console suggests), then /24 blocks of 172.16.0.0/12 and 100.64.0.0/10. Fleets beyond 20,736
 * servers get /28 blocks of 10.0.0.0/8: still distinct, though inside the first servers' /16s,
 * which is harmless as a pool belongs to one gateway. None overlaps the default LocalSubnet.
 */
export function clientIpPoolFor(index: number): string {
  if (index < 256) return `10.${index}.0.0/16`;
  let rest = index - 256;
  if (rest < 4096) return `172.${16 + (rest >> 8)}.${rest & 255}.0/24`;
  rest -= 4096;
  if (rest < 16384) return `100.${64 + (rest >> 8)}.${rest & 255}.0/24`;
  const address = (rest - 16384) * 16;
  return `10.${(address >> 16) & 255}.${(address >> 8) & 255}.${address & 255}/28`;
}

function internetIpFor(index: number): string {
  const n = index + 1;
  return `47.${96 + ((n >> 16) & 31)}.${(n >> 8) & 255}.${n & 255}`;
}

function uniqueId(prng: Prng, prefix: string, taken: Set<string>): string {
  for (;;) {
    const id = prefix + prng.string(20, LOWER_ALNUM);
    if (!taken.has(id)) {
      taken.add(id);
      return id;
    }
  }
}

export function generateFleet(spec: FleetSpec): SimServerRecord[] {
  const prng = new Prng(mixSeed(spec.seed, FLEET_STREAM));
  const taken = new Set<string>();
  const resourceGroups = spec.accessKeyIds.map(() => `rg-${prng.string(15, LOWER_ALNUM)}`);
  const records: SimServerRecord[] = [];
  for (let index = 0; index < spec.servers; index++) {
    // Regions alternate first, owners after a full turn of regions, so that with two keys and
    // two regions every key owns servers in every region.
    const regionId = spec.regions[index % spec.regions.length] as string;
    const ownerIndex = Math.floor(index / spec.regions.length) % spec.accessKeyIds.length;
    const internetIp = internetIpFor(index);
    const maxConnections = prng.pick(MAX_CONNECTION_CHOICES);
    records.push({
      IpsecServerId: uniqueId(prng, 'iss-', taken),
      IpsecServerName: `sim-ipsec-${String(index + 1).padStart(4, '0')}`,
      RegionId: regionId,
      VpnGatewayId: uniqueId(prng, 'vpn-', taken),
      LocalSubnet: '192.168.0.0/24',
      ClientIpPool: clientIpPoolFor(index),
      EffectImmediately: false,
      IkeConfig: defaultIkeConfig(internetIp),
      IpsecConfig: defaultIpsecConfig(),
      PskEnabled: true,
      Psk: prng.string(16, ALNUM),
      InternetIp: internetIp,
      CreationTime: new Date(CREATION_EPOCH_MS + index * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      MaxConnections: maxConnections,
      OnlineClientCount: prng.int(Math.min(maxConnections, 50) + 1),
      MultiFactorAuthEnabled: false,
      ResourceGroupId: resourceGroups[ownerIndex] as string,
      ownerAccessKeyId: spec.accessKeyIds[ownerIndex] as string,
    });
  }
  return records;
}

export function cloneRecord(record: SimServerRecord): SimServerRecord {
  return { ...record, IkeConfig: { ...record.IkeConfig }, IpsecConfig: { ...record.IpsecConfig } };
}

export function toListedServer(record: SimServerRecord): ListedServer {
  const { ownerAccessKeyId: _owner, ...listed } = cloneRecord(record);
  return listed;
}

/**
 * The server as ListIpsecServers shows it, as JSON: JSON.stringify(toListedServer(record)), made
 * once per state of the record. A listing answers with up to a page of servers, and serializing
 * each afresh was most of what a listing cost.
 */
export function listedJson(server: LiveServer): string {
  server.listedJson ??= JSON.stringify(toListedServer(server.record));
  return server.listedJson;
}

/**
 * To be called just before an apply changes the record when reads lag writes: until `until`,
 * listings show the record as it is now. Each apply keeps the window it was given, so a second
 * apply inside the first one's window is seen after it, not with it.
 */
export function keepStaleRead(server: LiveServer, until: number): void {
  const read: StaleRead = { until, record: cloneRecord(server.record), json: server.listedJson };
  if (server.staleReads) server.staleReads.push(read);
  else server.staleReads = [read];
}

/**
 * What a read at `now` sees of the server: the record from before its oldest apply that is not
 * visible yet, or undefined when every apply is (the live record).
 */
export function staleReadAt(server: LiveServer, now: number): StaleRead | undefined {
  const reads = server.staleReads;
  if (reads === undefined) return undefined;
  while (reads.length > 0 && (reads[0] as StaleRead).until <= now) reads.shift();
  if (reads.length > 0) return reads[0];
  server.staleReads = undefined;
  return undefined;
}

/** listedJson() of a stale read's record, made once per read. */
export function staleListedJson(read: StaleRead): string {
  read.json ??= JSON.stringify(toListedServer(read.record));
  return read.json;
}

/** To be called whenever a server's record changes: what was made from it is out of date. */
export function recordChanged(server: LiveServer): void {
  server.listedJson = undefined;
}

export function summarize(record: SimServerRecord): SimServerSummary {
  return {
    ipsecServerId: record.IpsecServerId,
    regionId: record.RegionId,
    vpnGatewayId: record.VpnGatewayId,
    ownerAccessKeyId: record.ownerAccessKeyId,
    ipsecServerName: record.IpsecServerName,
  };
}

const copyEntry = (entry: SimHistoryEntry): SimHistoryEntry => ({ ...entry, params: { ...entry.params } });

export function viewServer(server: LiveServer, now: number): SimServerView {
  const config = toListedServer(server.record);
  config.Psk = simPskLabel(config.Psk);
  const view: SimServerView = {
    ipsecServerId: server.record.IpsecServerId,
    regionId: server.record.RegionId,
    vpnGatewayId: server.record.VpnGatewayId,
    ownerAccessKeyId: server.record.ownerAccessKeyId,
    config,
    history: server.history.map(copyEntry),
    dryRuns: server.dryRuns.map(copyEntry),
  };
  if (server.configuringUntil > now) view.configuringUntil = new Date(server.configuringUntil).toISOString();
  return view;
}

/**
 * The live fleet with the indexes the actions need: by id (UpdateIpsecServer) and by owner and
 * region (ListIpsecServers, which would otherwise scan every server of a 100,000-server fleet).
 */
export class Fleet {
  readonly servers: LiveServer[];
  private readonly byId = new Map<string, LiveServer>();
  private readonly byOwnerRegion = new Map<string, LiveServer[]>();

  constructor(records: readonly SimServerRecord[], histories?: ReadonlyMap<string, SimHistoryEntry[]>) {
    this.servers = records.map((record, position) => ({
      record: cloneRecord(record),
      history: histories?.get(record.IpsecServerId)?.map((entry) => ({ ...entry })) ?? [],
      dryRuns: [],
      configuringUntil: 0,
      position,
      listedJson: undefined,
      staleReads: undefined,
    }));
    for (const server of this.servers) {
      this.byId.set(server.record.IpsecServerId, server);
      const key = ownerRegionKey(server.record.ownerAccessKeyId, server.record.RegionId);
      const list = this.byOwnerRegion.get(key);
      if (list) list.push(server);
      else this.byOwnerRegion.set(key, [server]);
    }
  }

  get(id: string): LiveServer | undefined {
    return this.byId.get(id);
  }

  ownedIn(accessKeyId: string, regionId: string): readonly LiveServer[] {
    return this.byOwnerRegion.get(ownerRegionKey(accessKeyId, regionId)) ?? [];
  }

  /**
   * The servers among `ids` that the key owns in the region, in listing order: a lookup per id,
   * because readers ask for a few ids at a time and a scan of the region would cost them all.
   */
  ownedInById(accessKeyId: string, regionId: string, ids: Iterable<string>): LiveServer[] {
    const found: LiveServer[] = [];
    for (const id of new Set(ids)) {
      const server = this.byId.get(id);
      if (server?.record.ownerAccessKeyId === accessKeyId && server.record.RegionId === regionId)
        found.push(server);
    }
    return found.sort((a, b) => a.position - b.position);
  }
}

function ownerRegionKey(accessKeyId: string, regionId: string): string {
  return `${accessKeyId}\n${regionId}`;
}

import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { IpsecFleetError } from '../errors.js';
import { ipv4NetworkCidrListSchema, ipv4NetworkCidrSchema } from '../ipsec/cidr.js';
import { regionIdSchema } from '../ipsec/update-params.js';
import { parseOrThrow } from '../validation.js';
import type { Fleet, SimHistoryEntry, SimServerRecord } from './fleet.js';

/**
 * A fleet kept across runs as JSON: `{ "version": 1, "servers": [record + history, ...] }`. It is
 * the simulator's own state (pre-shared keys in clear included, as the cloud holds them), for
 * demos and staging that should survive a restart; do not point it at anything real.
 */

export class FleetFileError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('SIM_FLEET_FILE', message, options);
  }
}

const text = z.string().min(1);

const historySchema = z.strictObject({
  at: z.iso.datetime(),
  clientToken: text.optional(),
  requestId: text,
  params: z.record(z.string(), z.unknown()),
});

const serverSchema = z.strictObject({
  IpsecServerId: text,
  IpsecServerName: text,
  RegionId: regionIdSchema,
  VpnGatewayId: text,
  LocalSubnet: ipv4NetworkCidrListSchema,
  ClientIpPool: ipv4NetworkCidrSchema,
  EffectImmediately: z.boolean(),
  IkeConfig: z.strictObject({
    IkeVersion: text,
    IkeMode: text,
    IkeEncAlg: text,
    IkeAuthAlg: text,
    IkePfs: text,
    IkeLifetime: z.number().int().min(0),
    LocalId: z.string().optional(),
    RemoteId: z.string().optional(),
  }),
  IpsecConfig: z.strictObject({
    IpsecEncAlg: text,
    IpsecAuthAlg: text,
    IpsecPfs: text,
    IpsecLifetime: z.number().int().min(0),
  }),
  PskEnabled: z.boolean(),
  Psk: text,
  InternetIp: text,
  CreationTime: text,
  MaxConnections: z.number().int().min(0),
  OnlineClientCount: z.number().int().min(0),
  MultiFactorAuthEnabled: z.boolean(),
  IDaaSInstanceId: z.string().optional(),
  ResourceGroupId: z.string(),
  ownerAccessKeyId: text,
  history: z.array(historySchema).default([]),
});

export const fleetFileSchema = z
  .strictObject({ version: z.literal(1), servers: z.array(serverSchema) })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.servers.forEach((server, index) => {
      if (seen.has(server.IpsecServerId)) {
        ctx.addIssue({
          code: 'custom',
          path: ['servers', index, 'IpsecServerId'],
          message: `repeats ${server.IpsecServerId}`,
        });
      }
      seen.add(server.IpsecServerId);
    });
  });

export interface LoadedFleet {
  records: SimServerRecord[];
  histories: Map<string, SimHistoryEntry[]>;
}

/** The fleet in `path`, or undefined when there is no such file yet (the caller generates one). */
export async function loadFleetFile(
  path: string,
  accessKeyIds: readonly string[],
): Promise<LoadedFleet | undefined> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FleetFileError(`cannot read fleet file ${path}: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch (error) {
    // Where, never what: JSON.parse's message quotes the text around the error, and the file
    // holds every server's Psk in clear.
    const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((error as Error).message)?.[0];
    throw new FleetFileError(`fleet file ${path} is not JSON${where ? ` (${where})` : ''}`);
  }
  const file = parseOrThrow(fleetFileSchema, json, `fleet file ${path}`);
  const keys = new Set(accessKeyIds);
  const records: SimServerRecord[] = [];
  const histories = new Map<string, SimHistoryEntry[]>();
  file.servers.forEach((server, index) => {
    // A server nobody can call would silently vanish from every listing; say so instead.
    if (!keys.has(server.ownerAccessKeyId)) {
      throw new FleetFileError(
        `fleet file ${path}: servers.${index}.ownerAccessKeyId ${server.ownerAccessKeyId} is not a configured access key`,
      );
    }
    const { history, ...record } = server;
    records.push(record);
    histories.set(record.IpsecServerId, history as SimHistoryEntry[]);
  });
  return { records, histories };
}

/** Writes the fleet through a temporary file and a rename, so a crash never leaves half a file. */
export async function saveFleetFile(path: string, fleet: Fleet): Promise<void> {
  const servers = fleet.servers.map((server) => ({ ...server.record, history: server.history }));
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify({ version: 1, servers }, null, 2)}\n`, 'utf8');
  await rename(temporary, path);
}

import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../log.js';
import { parseOrThrow } from '../validation.js';
import { ADMIN_PREFIX, type AdminTarget, handleAdmin } from './admin.js';
import { ApiDispatcher } from './dispatch.js';
import { parseFaultsPatch } from './faults.js';
import { generateFleet, type SimServerSummary, type SimServerView, summarize, viewServer } from './fleet.js';
import { loadFleetFile, saveFleetFile } from './fleet-file.js';
import {
  type SimFaults,
  type SimFaultsPatch,
  type SimulatorOptionsInput,
  simulatorOptionsSchema,
} from './options.js';
import { type SimClock, SimState } from './state.js';
import type { SimStats } from './stats.js';

/**
 * `ipsec-fleet sim`: a local Alibaba Cloud VPC endpoint for the IPsec server calls, faithful
 * enough that the official SDKs cannot tell it from the real one, and misbehaving on demand
 * (latency, 5xx, resets, throttling, busy and locked gateways), reproducibly from a seed.
 *
 * node:http directly: a framework's routing and hooks would cost more than the whole simulated
 * call, and the benchmark measures the client, not the simulator.
 */

export interface SimulatorHandle {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The primary key, options.accessKeys[0]. */
  accessKeyId: string;
  accessKeySecret: string;
  servers: SimServerSummary[];
  /** Same JSON as GET /_sim/stats. */
  stats(): SimStats;
  /** Same JSON as GET /_sim/servers/:id. */
  server(id: string): SimServerView | undefined;
  /** Same as POST /_sim/faults; throws InvalidInputError naming a bad field. */
  setFaults(patch: SimFaultsPatch): void;
  /** The faults in force (GET /_sim/faults). */
  faults(): SimFaults;
  /** Same as POST /_sim/reset. */
  reset(): void;
  /** Stops listening, drops open connections, and saves the fleet file if one was given. */
  close(): Promise<void>;
}

export interface SimulatorRuntime {
  logger?: Logger;
  /** Epoch milliseconds; defaults to Date.now. */
  clock?: SimClock;
}

export type { SimServerSummary, SimServerView, SimStats };

function formatEndpoint(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startSimulator(
  options?: SimulatorOptionsInput,
  runtime: SimulatorRuntime = {},
): Promise<SimulatorHandle> {
  const config = parseOrThrow(simulatorOptionsSchema, options ?? {}, 'simulator options');
  const clock = runtime.clock ?? Date.now;
  const accessKeyIds = config.accessKeys.map((key) => key.accessKeyId);
  const loaded = config.fleetFile ? await loadFleetFile(config.fleetFile, accessKeyIds) : undefined;
  const records =
    loaded?.records ??
    generateFleet({ seed: config.seed, servers: config.servers, regions: config.regions, accessKeyIds });
  const state = new SimState(config, records, loaded?.histories ?? new Map(), clock, runtime.logger);
  const summaries = records.map(summarize);
  const dispatcher = new ApiDispatcher(state);

  const viewOf = (id: string): SimServerView | undefined => {
    const server = state.fleet.get(id);
    return server ? viewServer(server, clock()) : undefined;
  };
  const admin: AdminTarget = {
    stats: () => state.stats.snapshot(),
    summaries: () => state.fleet.servers.map((server) => summarize(server.record)),
    server: viewOf,
    faults: () => state.faults.faults,
    setFaults: (patch) => state.setFaults(patch),
    reset: () => state.reset(),
  };

  const server = createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    if (req.url?.startsWith(ADMIN_PREFIX)) handleAdmin(req, res, admin);
    else dispatcher.handle(req, res);
  });
  // Clients keep connections for seconds; idle ones must not outlive close().
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });

  const address = await listen(server, config.port, config.host);
  const primary = config.accessKeys[0] as (typeof config.accessKeys)[number];
  let closing: Promise<void> | undefined;

  return {
    endpoint: formatEndpoint(address),
    accessKeyId: primary.accessKeyId,
    accessKeySecret: primary.accessKeySecret,
    servers: summaries,
    stats: () => state.stats.snapshot(),
    server: viewOf,
    setFaults: (patch) => state.setFaults(parseFaultsPatch(patch)),
    faults: () => state.faults.faults,
    reset: () => state.reset(),
    close: () => {
      closing ??= (async () => {
        dispatcher.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        if (config.fleetFile) await saveFleetFile(config.fleetFile, state.fleet);
      })();
      return closing;
    },
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidInputError } from '../validation.js';
import { parseFaultsPatch } from './faults.js';
import { isLoopback, readBody } from './http-request.js';
import type { SimFaultsPatch } from './options.js';
import { sendAdminJson } from './responses.js';

/**
 * The simulator's control routes, unsigned, under `/_sim/`. They are answered only to loopback
 * peers: a simulator bound to 0.0.0.0 for a demo must not let the network rewrite its faults or
 * read its fleet.
 *
 *   GET  /_sim/stats          counters (SimStats)
 *   GET  /_sim/servers        summaries of every server
 *   GET  /_sim/servers/:id    one server: config (Psk as fingerprint), history, last dry runs, configuring window
 *   GET  /_sim/faults         the faults in force
 *   POST /_sim/faults         change faults (JSON, any subset of the fields; 400 names a bad one)
 *   POST /_sim/reset          back to the fleet and state of the start (faults are kept)
 */

export const ADMIN_PREFIX = '/_sim/';

/** What the admin routes act on; the SimulatorHandle offers the same operations. */
export interface AdminTarget {
  stats(): unknown;
  summaries(): unknown;
  server(id: string): unknown;
  faults(): unknown;
  setFaults(patch: SimFaultsPatch): void;
  reset(): void;
}

function problem(res: ServerResponse, status: number, code: string, message: string, extra?: object): void {
  sendAdminJson(res, status, { code, message, ...extra });
}

export function handleAdmin(req: IncomingMessage, res: ServerResponse, target: AdminTarget): void {
  if (!isLoopback(req.socket.remoteAddress)) {
    problem(res, 403, 'FORBIDDEN', 'the /_sim/ routes answer loopback clients only');
    return;
  }
  const url = req.url ?? '';
  const mark = url.indexOf('?');
  const path = (mark < 0 ? url : url.slice(0, mark)).slice(ADMIN_PREFIX.length);
  const method = req.method ?? 'GET';
  const isServer = path.startsWith('servers/');

  if (method === 'GET' && path === 'stats') sendAdminJson(res, 200, target.stats());
  else if (method === 'GET' && path === 'servers') sendAdminJson(res, 200, target.summaries());
  else if (method === 'GET' && isServer) showServer(res, target, path.slice('servers/'.length));
  else if (method === 'GET' && path === 'faults') sendAdminJson(res, 200, target.faults());
  else if (method === 'POST' && path === 'faults') changeFaults(req, res, target);
  else if (method === 'POST' && path === 'reset') {
    target.reset();
    sendAdminJson(res, 200, { reset: true });
  } else if (['stats', 'servers', 'faults', 'reset'].includes(path) || isServer) {
    problem(res, 405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${ADMIN_PREFIX}${path}`);
  } else {
    problem(res, 404, 'NOT_FOUND', `no admin route ${ADMIN_PREFIX}${path}`);
  }
}

function showServer(res: ServerResponse, target: AdminTarget, encodedId: string): void {
  let id: string;
  try {
    id = decodeURIComponent(encodedId);
  } catch {
    id = encodedId;
  }
  const view = target.server(id);
  if (view === undefined) problem(res, 404, 'NOT_FOUND', `no server ${id}`);
  else sendAdminJson(res, 200, view);
}

function changeFaults(req: IncomingMessage, res: ServerResponse, target: AdminTarget): void {
  readBody(req, (error, body) => {
    if (error) {
      problem(res, 400, 'INVALID_INPUT', error.message);
      return;
    }
    let input: unknown;
    try {
      input = JSON.parse(body && body.length > 0 ? body.toString('utf8') : '{}');
    } catch (parseError) {
      problem(res, 400, 'INVALID_INPUT', `the body is not JSON: ${(parseError as Error).message}`);
      return;
    }
    try {
      target.setFaults(parseFaultsPatch(input));
    } catch (invalid) {
      if (!(invalid instanceof InvalidInputError)) throw invalid;
      problem(res, 400, invalid.code, invalid.message, { issues: invalid.issues });
      return;
    }
    sendAdminJson(res, 200, target.faults());
  });
}

import { type Command, Option } from 'commander';
import type { AuditEvent } from '../audit/event.js';
import { ApiClient, ApiError } from './api-client.js';
import { type Connection, resolveConnection } from './cli-config.js';
import { EXIT_CODES_HELP } from './exit-codes.js';
import { reportError } from './report-error.js';
import { cell, formatDuration, formatTime } from './table.js';

/** What every verb over the HTTP API shares: connection flags, help text, errors, printing. */

export const CONNECTION_HELP = `
Connection:
  --api, then IPSEC_FLEET_API, then "api" in the config file (IPSEC_FLEET_CONFIG, or
  ~/.config/ipsec-fleet/config.json), default http://127.0.0.1:8080; the same order for
  --token-file, IPSEC_FLEET_TOKEN and "token". The file is JSON: {"api": "https://...",
  "token": "ipf_..."}. The token is never a flag's value (process lists and shell history would
  show it): --token-file FILE reads it from a file, --token-file - from stdin.
  --json prints machine output on stdout; errors always go to stderr (as a problem JSON object
  with --json).
`;

export function addConnectionOptions(command: Command): Command {
  return (
    command
      .option('--api <url>', 'ipsec-fleet API base URL (env IPSEC_FLEET_API)')
      .option('--token-file <file>', 'API bearer token from a file, or - for stdin (env IPSEC_FLEET_TOKEN)')
      // Still parsed, so that a leftover --token is refused with the alternatives, not taken.
      .addOption(new Option('--token <token>').hideHelp())
      .option('--json', 'print JSON on stdout instead of text')
      .option('--timeout <ms>', 'deadline of each request in milliseconds (default 10000)')
  );
}

export function apiHelp(examples: string): string {
  return `\n${examples.trimEnd()}\n${CONNECTION_HELP}${EXIT_CODES_HELP}`;
}

export interface ApiContext {
  client: ApiClient;
  connection: Connection;
  json: boolean;
}

/**
 * Runs a verb: resolves the connection (flags > env > config file), opens a client, and turns
 * whatever goes wrong into its exit code and a message on stderr (a problem object with --json).
 * `prepare` runs first, with nothing sent yet: local validation belongs there.
 */
export async function runApiCommand<T>(
  command: Command,
  prepare: () => T | Promise<T>,
  run: (context: ApiContext, prepared: T) => Promise<void>,
): Promise<void> {
  const json = command.opts().json === true;
  let client: ApiClient | undefined;
  let connection: Connection | undefined;
  try {
    connection = await resolveConnection(command.opts());
    const prepared = await prepare();
    client = new ApiClient({
      baseUrl: connection.api,
      token: connection.token,
      timeoutMs: connection.timeoutMs,
    });
    await run({ client, connection, json }, prepared);
  } catch (error) {
    reportError(error, json);
    if (!json && error instanceof ApiError && error.status === 401 && connection?.token === undefined) {
      process.stderr.write(
        'ipsec-fleet: hint: give a token with --token-file FILE (or - for stdin), IPSEC_FLEET_TOKEN or the config file\n',
      );
    }
  } finally {
    // Streams that ended early (a terminal event seen) must not hold the process open.
    await client?.destroy();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** What an event adds beyond its type: the cloud's code, a delay, the message, the request id. */
export function eventInfo(event: AuditEvent): string {
  const parts: string[] = [];
  if (event.code) parts.push(event.code);
  if (event.delayMs !== undefined) parts.push(`retry in ${formatDuration(event.delayMs)}`);
  const details = (event.details ?? {}) as Record<string, unknown>;
  if (typeof details.message === 'string') parts.push(details.message);
  if (details.gaveUp === true) parts.push('gave up');
  if (event.type === 'submitted' && details.params && typeof details.params === 'object') {
    parts.push(
      Object.entries(details.params as Record<string, unknown>)
        .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join(' '),
    );
  }
  if (event.type === 'submitted' && typeof details.note === 'string') parts.push(`note: ${details.note}`);
  if (event.cloudRequestId) parts.push(`request ${event.cloudRequestId}`);
  return parts.join('; ');
}

/**
 * One event as one line, printed as it arrives (so no table: the widths are fixed). With
 * `withChange` the change and server ids are shown too, for streams that mix changes.
 */
export function formatEvent(event: AuditEvent, withChange: boolean): string {
  const columns = [formatTime(event.ts, true)];
  if (withChange) columns.push(cell(event.changeId), cell(event.ipsecServerId));
  columns.push(cell(event.type).padEnd(14), cell(event.actor), `#${event.attempt}`);
  const info = eventInfo(event);
  if (info) columns.push(cell(info));
  return columns.join('  ');
}

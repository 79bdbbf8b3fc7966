import type { Command } from 'commander';
import { z } from 'zod';
import { changeSubmissionSchema } from '../../orchestrator/change.js';
import type { AuditParams } from '../api-client.js';
import { addConnectionOptions, apiHelp, formatEvent, printJson, runApiCommand } from '../api-command.js';
import { byFlag, parseFlags } from '../flags.js';
import { changeIdSchema } from './get.js';

// The API's rule: a date alone is midnight UTC; a time needs its offset, never the local zone.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/** Epoch milliseconds or ISO 8601, as the API takes them; sent as epoch milliseconds. */
const timeFlag = z
  .string()
  .transform((value, ctx) => {
    const ms = /^\d+$/.test(value) ? Number(value) : ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
    if (!Number.isSafeInteger(ms)) {
      ctx.addIssue(
        `must be epoch milliseconds or ISO 8601 with an offset, e.g. 2025-06-01T12:00:00Z (got ${JSON.stringify(value)})`,
      );
      return z.NEVER;
    }
    return ms;
  })
  .optional();

const auditFlagsSchema = z
  .object({
    '--change': changeIdSchema.optional(),
    '--server': changeSubmissionSchema.shape.ipsecServerId.optional(),
    '--from': timeFlag,
    '--to': timeFlag,
    '--limit': z
      .string()
      .regex(/^\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(1, 'must be at least 1').max(10_000, 'must be at most 10000'))
      .optional(),
    '--follow': z.boolean().optional(),
    '--jsonl': z.boolean().optional(),
  })
  .superRefine((flags, ctx) => {
    const from = flags['--from'];
    const to = flags['--to'];
    if (from !== undefined && to !== undefined && from > to) {
      ctx.addIssue({ code: 'custom', path: ['--to'], message: 'must not be before --from' });
    }
    if (flags['--follow']) {
      if (flags['--change'] === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['--follow'],
          message: 'needs --change: it follows one change',
        });
      }
      for (const flag of ['--server', '--from', '--to', '--limit'] as const) {
        if (flags[flag] !== undefined) {
          ctx.addIssue({ code: 'custom', path: [flag], message: 'cannot be used with --follow' });
        }
      }
    }
  });

/** Writes to stdout, waiting when the reader is slower than the API (a long export to a pipe). */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

export function registerAuditCommand(program: Command): void {
  const command = program
    .command('audit')
    .summary('print the audit trail: of a change, a server or a time range; or follow a change live')
    .description(
      'Print audit events, oldest first: every state transition and step of changes, with its actor. ' +
        'Without filters, the whole trail (mind --limit). --follow streams one change live until it ends.',
    )
    .option('--change <id>', 'only the events of this change')
    .option('--server <id>', 'only the events of changes of this IPsec server')
    .option(
      '--from <time>',
      'events at or after this time: epoch ms or ISO 8601 (a time with its offset, e.g. Z)',
    )
    .option('--to <time>', 'events at or before this time: epoch ms or ISO 8601')
    .option('--limit <n>', 'at most this many events, 1 to 10000 (--json: default 1000; otherwise no limit)')
    .option('--follow', "with --change: print the change's events as they happen, until it ends")
    .option('--jsonl', 'print each event as one JSON line (for files, jq and log shippers)');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'Output: one line per event; --jsonl: one JSON object per line, streamed; --json: {"events": AuditEvent[]}\n' +
          '(with --follow, --json prints JSON lines too).\n\n' +
          'Examples:\n' +
          '  ipsec-fleet audit --server iss-bp1x --from 2025-06-01T00:00:00Z\n' +
          '  ipsec-fleet audit --change chg-01m8k92k93bjwap0kfnhcz --follow\n' +
          '  ipsec-fleet audit --from 1748736000000 --jsonl > audit.jsonl',
      ),
    )
    .action(async (_options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => parseFlags(auditFlagsSchema, byFlag(cmd)),
        async ({ client, json }, flags) => {
          const jsonl = flags['--jsonl'] === true;
          if (flags['--follow']) {
            for await (const event of client.followChange(flags['--change'] as string)) {
              await write(`${json || jsonl ? JSON.stringify(event) : formatEvent(event, false)}\n`);
            }
            return;
          }
          const params: AuditParams = {
            change: flags['--change'],
            server: flags['--server'],
            from: flags['--from'],
            to: flags['--to'],
            limit: flags['--limit'],
          };
          if (jsonl) {
            // Passed through as the API streams it: nothing is parsed or held in memory.
            for await (const line of client.auditLines(params)) if (line !== '') await write(`${line}\n`);
            return;
          }
          if (json) {
            printJson(await client.audit(params));
            return;
          }
          let count = 0;
          for await (const event of client.auditEvents(params)) {
            await write(`${formatEvent(event, true)}\n`);
            count++;
          }
          if (count === 0) await write('no events\n');
        },
      );
    });
}

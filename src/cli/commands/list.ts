import type { Command } from 'commander';
import { z } from 'zod';
import { CHANGE_STATES, listChangesQuerySchema } from '../../orchestrator/change.js';
import { addConnectionOptions, apiHelp, printJson, printLine, runApiCommand } from '../api-command.js';
import { byFlag, parseFlags, wholeNumberFlag } from '../flags.js';
import { cell, formatTable, formatTime } from '../table.js';

const query = listChangesQuerySchema.shape;

const listFlagsSchema = z.object({
  '--server': query.server,
  '--state': z.enum(CHANGE_STATES, { error: `must be one of ${CHANGE_STATES.join(', ')}` }).optional(),
  // The API's rule, worded here: its schema states it in zod's words ("Too small: ...").
  '--limit': wholeNumberFlag()
    .pipe(z.number().min(1, 'must be from 1 to 500').max(500, 'must be from 1 to 500'))
    .pipe(query.limit.unwrap())
    .optional(),
  '--cursor': query.cursor,
});

export function registerListCommand(program: Command): void {
  const command = program
    .command('list')
    .summary('list changes, newest first, by server and state')
    .description('List changes, newest first, optionally of one server and in one state, a page at a time.')
    .option('--server <id>', 'only changes of this IPsec server')
    .option('--state <state>', `only changes in this state: ${CHANGE_STATES.join(', ')}`)
    .option('--limit <n>', 'changes per page, 1 to 500 (default 50)')
    .option('--cursor <cursor>', 'the next page, as printed after the previous one');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'Output: a table, then the command for the next page when there is one;\n' +
          '--json prints {"changes": Change[], "nextCursor"?: string}.\n\n' +
          'Examples:\n  ipsec-fleet list --state backing_off\n  ipsec-fleet list --server iss-bp1x --limit 10 --json',
      ),
    )
    .action(async (_options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => parseFlags(listFlagsSchema, byFlag(cmd)),
        async ({ client, json }, flags) => {
          const page = await client.listChanges({
            server: flags['--server'],
            state: flags['--state'],
            limit: flags['--limit'],
            cursor: flags['--cursor'],
          });
          if (json) {
            printJson(page);
            return;
          }
          if (page.changes.length === 0) printLine('no changes');
          else {
            printLine(
              formatTable(
                ['ID', 'STATE', 'STEP', 'SERVER', 'REGION', 'ACTOR', 'CREATED', 'UPDATED', 'LAST CODE'],
                page.changes.map((change) => [
                  change.id,
                  change.state,
                  change.step,
                  change.ipsecServerId,
                  change.regionId,
                  change.actor,
                  formatTime(change.createdAt),
                  formatTime(change.updatedAt),
                  change.lastCode,
                ]),
              ),
            );
          }
          if (page.nextCursor) {
            const filters = [
              flags['--server'] ? ` --server ${cell(flags['--server'])}` : '',
              flags['--state'] ? ` --state ${flags['--state']}` : '',
              flags['--limit'] ? ` --limit ${flags['--limit']}` : '',
            ].join('');
            printLine(`next page: ipsec-fleet list${filters} --cursor ${cell(page.nextCursor)}`);
          }
        },
      );
    });
}

import type { Command } from 'commander';
import { z } from 'zod';
import { parseOrThrow } from '../../validation.js';
import { addConnectionOptions, apiHelp, printJson, printLine, runApiCommand } from '../api-command.js';
import { cell } from '../table.js';
import { changeIdSchema } from './get.js';

export function registerCancelCommand(program: Command): void {
  const command = program
    .command('cancel')
    .summary('cancel a change that is waiting (queued or backing off)')
    .description(
      'Cancel a change that is waiting: queued in its lane or backing off. A running or ended change ' +
        'cannot be cancelled, nor one backing off after an apply that may have taken effect (it is ' +
        'retried and verified): the API answers 409 CHANGE_STATE_CONFLICT (exit 3).',
    )
    .argument('<id>', 'change id');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'Output: --json prints {"change": Change}.\n\nExample:\n  ipsec-fleet cancel chg-01m8k92k93bjwap0kfnhcz',
      ),
    )
    .action(async (id: string, _options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => parseOrThrow(z.object({ id: changeIdSchema }), { id }, 'arguments').id,
        async ({ client, json }, changeId) => {
          const result = await client.cancelChange(changeId);
          if (json) printJson(result);
          else printLine(`change ${cell(result.change.id)} ${cell(result.change.state)}`);
        },
      );
    });
}

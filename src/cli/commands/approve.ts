import type { Command } from 'commander';
import { z } from 'zod';
import type { ChangeView } from '../../orchestrator/change.js';
import { addConnectionOptions, apiHelp, printJson, printLine, runApiCommand } from '../api-command.js';
import { ChangeApprovalClient } from '../change-approval-client.js';
import { byFlag, parseFlags } from '../flags.js';
import { cell } from '../table.js';
import { changeIdSchema } from './get.js';

const reasonSchema = z.string().min(1, 'must not be empty').max(1024, 'must be at most 1024 characters');

function describe(change: ChangeView): string {
  const approval = change.approval;
  const approvals = approval ? ` (approvals ${approval.approvers.length}/${approval.required})` : '';
  return `change ${cell(change.id)} ${cell(change.state)}${change.state === 'awaiting_approval' ? approvals : ''}`;
}

function register(program: Command, action: 'approve' | 'reject'): void {
  const command = program
    .command(action)
    .summary(
      action === 'approve'
        ? 'approve a change awaiting approval (role approver)'
        : 'reject a change awaiting approval, with a reason (role approver)',
    )
    .description(
      action === 'approve'
        ? 'Approve a change the approval policy holds in awaiting_approval. Its submitter cannot approve ' +
            'it (403 APPROVER_IS_SUBMITTER); each approver counts once; the last approval needed puts ' +
            'the change in its server lane. A change not awaiting approval, or expired, is a 409 (exit 3).'
        : 'Reject a change awaiting approval: it ends rejected with the reason and is never applied. Its ' +
            'submitter cannot reject it (cancel it instead).',
    )
    .argument('<id>', 'change id');
  if (action === 'reject') command.requiredOption('--reason <text>', 'why (1 to 1024 characters, audited)');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        `Output: --json prints {"change": Change}.\n\nExample:\n  ipsec-fleet ${action} chg-01m8k92k93bjwap0kfnhcz${
          action === 'reject' ? ' --reason "not during business hours"' : ''
        }`,
      ),
    )
    .action(async (id: string, _options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () =>
          parseFlags(
            z.object({ id: changeIdSchema, '--reason': reasonSchema.optional() }),
            { id, '--reason': byFlag(cmd)['--reason'] },
            'arguments',
          ),
        async ({ connection, json }, parsed) => {
          const client = new ChangeApprovalClient({
            baseUrl: connection.api,
            token: connection.token,
            timeoutMs: connection.timeoutMs,
          });
          try {
            const change =
              action === 'approve'
                ? await client.approveChange(parsed.id)
                : await client.rejectChange(parsed.id, parsed['--reason'] ?? '');
            if (json) printJson({ change });
            else printLine(describe(change));
          } finally {
            await client.destroy();
          }
        },
      );
    });
}

/** `ipsec-fleet approve ID` and `ipsec-fleet reject ID --reason R`. */
export function registerApproveCommands(program: Command): void {
  register(program, 'approve');
  register(program, 'reject');
}

import type { Command } from 'commander';
import { z } from 'zod';
import { changeSubmissionSchema } from '../../orchestrator/change.js';
import { parseOrThrow } from '../../validation.js';
import { addConnectionOptions, apiHelp, printJson, printLine, runApiCommand } from '../api-command.js';
import { cell, formatTable, formatTime } from '../table.js';

export function registerLaneCommand(program: Command): void {
  const command = program
    .command('lane')
    .summary("show a server's lane: the changes waiting on it, in the order they will run")
    .description(
      "Show a server's lane: its changes that have not ended, head first. The head is the one running or " +
        'next to run; the others wait their turn.',
    )
    .argument('<server-id>', 'IPsec server id');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'Output: --json prints {"ipsecServerId": string, "lane": LaneEntry[]}.\n\nExample:\n  ipsec-fleet lane iss-bp1x',
      ),
    )
    .action(async (serverId: string, _options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () =>
          parseOrThrow(
            z.object({ 'server-id': changeSubmissionSchema.shape.ipsecServerId }),
            { 'server-id': serverId },
            'arguments',
          )['server-id'],
        async ({ client, json }, id) => {
          const lane = await client.lane(id);
          if (json) {
            printJson(lane);
            return;
          }
          if (lane.lane.length === 0) {
            printLine(`the lane of ${cell(lane.ipsecServerId)} is empty`);
            return;
          }
          printLine(
            formatTable(
              ['POS', 'ID', 'STATE', 'STEP', 'ACTOR', 'CREATED'],
              lane.lane.map((entry) => [
                entry.position,
                entry.id,
                entry.state,
                entry.step,
                entry.actor,
                formatTime(entry.createdAt),
              ]),
            ),
          );
        },
      );
    });
}

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDocument, YAMLError } from 'yaml';
import { z } from 'zod';
import type { RolloutView } from '../../rollouts/rollout.js';
import { type RolloutSpecInput, rolloutSpecSchema } from '../../rollouts/rollout-spec.js';
import { InvalidInputError, parseOrThrow } from '../../validation.js';
import {
  type ApiContext,
  addConnectionOptions,
  apiHelp,
  printJson,
  printLine,
  runApiCommand,
} from '../api-command.js';
import { ExitCode } from '../exit-codes.js';
import { byFlag, parseFlags } from '../flags.js';
import { RolloutClient, type RolloutDetail } from '../rollout-client.js';
import { createWatcher } from '../rollout-watch.js';
import { cell, formatFields, formatTable, formatTime } from '../table.js';

const rolloutIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a rollout id such as rol-01jq8x2m3n4p5q6r7s8t9v0w');

/** States a rollout ends in; `planned` only for plan-only rollouts. */
const TERMINAL = new Set(['planned', 'completed', 'halted', 'cancelled', 'rejected', 'expired']);

/**
 * Reads a rollout file (YAML, JSON being YAML too) and checks it by the rules the API applies:
 * a bad file exits 2 naming the field, and nothing is sent.
 */
export function readRolloutFile(path: string): RolloutSpecInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError('-f', [
      { field: '-f', rule: `cannot read ${path}: ${(error as Error).message}` },
    ]);
  }
  let parsed: unknown;
  try {
    // The library's own warnings go to stderr quoting the offending line, which may hold a Psk
    // (`Psk: !secret ...`): they are kept quiet there and reported here as place and code only.
    const document = parseDocument(text, { logLevel: 'error' });
    const [error] = document.errors;
    if (error) throw error;
    for (const warning of document.warnings) {
      process.stderr.write(`ipsec-fleet: warning: -f ${path}: ${yamlProblem(warning)}\n`);
    }
    parsed = document.toJS();
  } catch (error) {
    throw new InvalidInputError('-f', [
      { field: '-f', rule: `${path} is not valid YAML or JSON: ${yamlProblem(error)}` },
    ]);
  }
  parseOrThrow(rolloutSpecSchema, parsed, `rollout file ${path}`);
  // Sent as written (the API applies the defaults).
  return parsed as RolloutSpecInput;
}

/**
 * Where and what, never the text: the yaml library's message quotes the offending lines, and a
 * rollout file's params may hold a Psk that would then reach the terminal and CI logs.
 */
function yamlProblem(error: unknown): string {
  if (error instanceof YAMLError) {
    const at = error.linePos?.[0];
    return at ? `${error.code} at line ${at.line}, column ${at.col}` : error.code;
  }
  return 'unreadable';
}

function clientOf({ connection }: ApiContext): RolloutClient {
  return new RolloutClient({
    baseUrl: connection.api,
    token: connection.token,
    timeoutMs: connection.timeoutMs,
  });
}

/** Runs with a RolloutClient beside the change client, closed afterwards. */
async function withRollouts(
  context: ApiContext,
  run: (client: RolloutClient) => Promise<void>,
): Promise<void> {
  const client = clientOf(context);
  try {
    await run(client);
  } finally {
    await client.destroy();
  }
}

function summary(rollout: RolloutView): string {
  const plan = rollout.plan
    ? ` plan: ${Object.entries(rollout.plan)
        .filter(([, count]) => count > 0)
        .map(([kind, count]) => `${kind}=${count}`)
        .join(' ')}`
    : '';
  return `rollout ${rollout.id} ${cell(rollout.state)}${rollout.reason ? ` (${cell(rollout.reason)})` : ''}${plan}`;
}

export function printRolloutDetail({ rollout, plan }: RolloutDetail): void {
  const { progress } = rollout;
  printLine(
    formatFields([
      ['rollout', rollout.id],
      ['state', rollout.state],
      ['reason', rollout.reason],
      ['actor', rollout.actor],
      ['note', rollout.note],
      ['targets', rollout.targetCount],
      ['strategy', rollout.settings?.strategy],
      ['max errors', rollout.settings?.maxErrors],
      ['approvals', `${rollout.approvals}/${rollout.approvalsRequired}`],
      ['expires', rollout.expiresAt === undefined ? undefined : formatTime(rollout.expiresAt)],
      ['rollback of', rollout.rollbackOf],
      [
        'progress',
        `${progress.percent}% (${progress.succeeded} ok, ${progress.errors} errors, ${progress.inFlight} in flight of ${progress.total})`,
      ],
      ['batch', progress.batchCount ? `${progress.currentBatch}/${progress.batchCount}` : undefined],
      ['created', formatTime(rollout.createdAt)],
      ['updated', formatTime(rollout.updatedAt)],
      ['finished', rollout.finishedAt === undefined ? undefined : formatTime(rollout.finishedAt)],
    ]),
  );
  printLine();
  printPlan(plan);
}

export function printPlan(plan: RolloutDetail['plan']): void {
  printLine('Plan:');
  if (plan.length === 0) {
    printLine('  - (known once planning looked at the targets)');
    return;
  }
  const rows = plan.map((target) => [
    target.index,
    target.ipsecServerId,
    target.regionId,
    target.kind,
    target.kind === 'would-change'
      ? (target.diff ?? [])
          .map((entry) => `${entry.field}: ${cell(entry.from)} -> ${cell(entry.to)}`)
          .join('; ')
      : [target.code, target.message].filter(Boolean).join(': '),
  ]);
  printLine(
    formatTable(['#', 'SERVER', 'REGION', 'PLAN', 'DETAIL'], rows)
      .split('\n')
      .map((line) => `  ${line}`)
      .join('\n'),
  );
}

/** Follows the rollout's stream to its end, drawing progress; returns the last state seen. */
async function watch(
  client: RolloutClient,
  id: string,
  output: 'text' | 'json' | 'none',
): Promise<string | undefined> {
  const watcher = createWatcher(process.stdout, {
    json: output === 'json',
    tty: process.stdout.isTTY === true,
    silent: output === 'none',
  });
  let state: string | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      // No deadline on the stream body: a rollout may wait hours for its approval.
      for await (const item of client.rolloutEvents(id)) {
        watcher.take(item);
        if (item.kind === 'progress') state = item.frame.state;
      }
    } catch (error) {
      watcher.finish();
      if (attempt === 4) throw error;
    }
    if (state && TERMINAL.has(state)) break;
    await new Promise((resolve) => setTimeout(resolve, 1_000 * (attempt + 1)));
  }
  watcher.finish();
  return state;
}

function addFileCommand(
  parent: Command,
  name: 'plan' | 'create',
  summaryText: string,
  description: string,
): void {
  const command = parent
    .command(name)
    .summary(summaryText)
    .description(description)
    .requiredOption('-f, --file <file>', 'the rollout as YAML or JSON');
  if (name === 'create')
    command.option('--watch', 'draw its progress until it ends; exit 0 if it completed, 5 otherwise');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'A rollout file:\n' +
          '  targets:\n' +
          '    - { ipsecServerId: iss-bp1a, regionId: cn-shanghai }\n' +
          '    - { ipsecServerId: iss-bp1b, regionId: cn-shanghai, params: { IpsecServerName: vpn-b } }\n' +
          '  params: { LocalSubnet: 10.0.0.0/24 }\n' +
          '  strategy: { batches: [1, 25%] }     # or { concurrency: 5 }\n' +
          '  maxErrors: 1\n' +
          '  approvals: { required: 1 }\n' +
          '  note: widen the subnet\n\n' +
          `Example:\n  ipsec-fleet rollout ${name} -f rollout.yaml${name === 'create' ? ' --watch' : ''}`,
      ),
    )
    .action(async (_options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => {
          const flags = byFlag(cmd);
          return { spec: readRolloutFile(String(flags['--file'])), watch: flags['--watch'] === true };
        },
        async (context, prepared) =>
          withRollouts(context, async (client) => {
            const { json } = context;
            const spec = name === 'plan' ? { ...prepared.spec, planOnly: true } : prepared.spec;
            const created = await client.createRollout(spec);
            if (name === 'create' && !prepared.watch) {
              if (json) printJson({ rollout: created });
              else {
                printLine(`created ${summary(created)}`);
                printLine(`watch it: ipsec-fleet rollout status ${created.id}`);
              }
              return;
            }
            if (!json)
              printLine(`created rollout ${created.id}; ${name === 'plan' ? 'planning' : 'watching'}`);
            const state = await watch(
              client,
              created.id,
              json ? (name === 'create' ? 'json' : 'none') : 'text',
            );
            if (name === 'plan') {
              const detail = await client.getRollout(created.id);
              if (json) printJson(detail);
              else {
                printLine(summary(detail.rollout));
                printPlan(detail.plan);
              }
              if (detail.rollout.state !== 'planned') process.exitCode = ExitCode.notSucceeded;
              return;
            }
            const done = await client.getRollout(created.id);
            if (!json) printLine(summary(done.rollout));
            const ok = state === 'completed' || (state === 'planned' && done.rollout.settings?.planOnly);
            if (!ok) process.exitCode = ExitCode.notSucceeded;
          }),
      );
    });
}

function addActionCommand(
  parent: Command,
  action: 'approve' | 'reject' | 'pause' | 'resume' | 'cancel' | 'rollback',
  summaryText: string,
): void {
  const command = parent
    .command(action)
    .summary(summaryText)
    .description(`${summaryText.charAt(0).toUpperCase()}${summaryText.slice(1)}.`)
    .argument('<id>', 'rollout id');
  if (action === 'reject') command.requiredOption('--reason <text>', 'why (kept with the rollout)');
  if (action === 'rollback') command.option('--note <text>', 'why (kept with the new rollout)');
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        `Example:\n  ipsec-fleet rollout ${action} rol-01m8k92m4rxdq7tb2kz6ey${action === 'reject' ? ' --reason "not now"' : ''}`,
      ),
    )
    .action(async (id: string, _options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => {
          const flags = byFlag(cmd);
          const text = z.string().min(1, 'must not be empty').max(1024, 'must be at most 1024 characters');
          const parsed = parseFlags(
            z.object({ id: rolloutIdSchema, '--reason': text.optional(), '--note': text.optional() }),
            { id, '--reason': flags['--reason'], '--note': flags['--note'] },
            'arguments',
          );
          if (action === 'reject') return { id: parsed.id, payload: { reason: parsed['--reason'] } };
          if (action === 'rollback' && parsed['--note'])
            return { id: parsed.id, payload: { note: parsed['--note'] } };
          return { id: parsed.id, payload: undefined };
        },
        async (context, prepared) =>
          withRollouts(context, async (client) => {
            const rollout = await client.rolloutAction(prepared.id, action, prepared.payload);
            if (context.json) printJson({ rollout });
            else if (action === 'rollback')
              printLine(`created ${summary(rollout)} to roll back ${prepared.id}`);
            else printLine(summary(rollout));
          }),
      );
    });
}

export function registerRolloutCommand(program: Command): void {
  const rollout = program
    .command('rollout')
    .summary('carry one change to many servers: plan, approve, run under rate control')
    .description(
      'Rollouts: one params patch to many IPsec servers. A rollout is planned (a dry run and a read of ' +
        'each target), approved by someone other than its submitter, then run in batches or at a capped ' +
        'concurrency, halting when errors pass maxErrors.',
    );
  addFileCommand(
    rollout,
    'plan',
    'plan a rollout file without running it: what each target would change',
    'Create the rollout with planOnly and print the plan report once it is planned (exit 5 if planning failed).',
  );
  addFileCommand(
    rollout,
    'create',
    'create a rollout from a file (planned, then awaiting approval)',
    'Create a rollout from a YAML or JSON file, checked here by the rules the API applies (exit 2 naming the field).\n' +
      'With --watch, draw a live progress bar (in place on a terminal, a line per change otherwise) until it ends.',
  );
  addActionCommand(rollout, 'approve', 'approve a rollout awaiting approval (not its submitter)');
  addActionCommand(rollout, 'reject', 'reject a rollout awaiting approval (not its submitter)');
  addActionCommand(rollout, 'pause', 'pause a running rollout (changes in flight finish)');
  addActionCommand(rollout, 'resume', 'resume a paused rollout');
  addActionCommand(rollout, 'cancel', 'cancel a rollout (waiting changes are cancelled)');
  addActionCommand(rollout, 'rollback', 'create a rollout putting back what an ended rollout applied');

  const status = rollout
    .command('status')
    .summary('show a rollout: state, progress and plan report')
    .description('Show a rollout: its state, progress and plan report.')
    .argument('<id>', 'rollout id');
  addConnectionOptions(status)
    .addHelpText('after', apiHelp('Output: --json prints {"rollout": Rollout, "plan": TargetPlan[]}.'))
    .action(async (id: string, _options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => parseOrThrow(z.object({ id: rolloutIdSchema }), { id }, 'arguments').id,
        async (context, rolloutId) =>
          withRollouts(context, async (client) => {
            const detail = await client.getRollout(rolloutId);
            if (context.json) printJson(detail);
            else printRolloutDetail(detail);
          }),
      );
    });
}

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { MUTABLE_FIELDS, type MutableParamsInput, mutableParamsSchema } from '../../ipsec/update-params.js';
import { changeSubmissionSchema } from '../../orchestrator/change.js';
import { type FieldIssue, fieldIssues, InvalidInputError, parseInWords } from '../../validation.js';
import { type ApiClient, isTerminalEvent, type SubmitChangeBody } from '../api-client.js';
import {
  addConnectionOptions,
  apiHelp,
  formatEvent,
  printJson,
  printLine,
  runApiCommand,
} from '../api-command.js';
import { ExitCode } from '../exit-codes.js';
import { byFlag, parseFlags, repeatableOption } from '../flags.js';
import { readSecretInput } from '../secret-input.js';
import { cell } from '../table.js';

/** Fields `--set Name=Value` may set; the JSON configs and the Psk have flags of their own. */
const SET_FIELDS = [
  'LocalSubnet',
  'ClientIpPool',
  'IpsecServerName',
  'EffectImmediately',
  'PskEnabled',
] as const;
const BOOLEAN_FIELDS = new Set(['EffectImmediately', 'PskEnabled']);
const OWN_FLAG: Record<string, string> = {
  IkeConfig: 'is set from a JSON file: use --ike-config FILE',
  IpsecConfig: 'is set from a JSON file: use --ipsec-config FILE',
  Psk:
    'is never taken from a flag, where it would land in shell history and process lists: ' +
    'use --psk-file FILE, or --psk-file - to read it from stdin',
};

const required = <T extends z.ZodType<string, string>>(schema: T) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .pipe(schema);

const submitFlagsSchema = z.object({
  '--server': required(changeSubmissionSchema.shape.ipsecServerId),
  '--region': required(changeSubmissionSchema.shape.regionId),
  '--set': z.array(z.string()).default([]),
  '--ike-config': z.string().min(1, 'must name a file').optional(),
  '--ipsec-config': z.string().min(1, 'must name a file').optional(),
  '--psk-file': z.string().min(1, 'must name a file, or - for stdin').optional(),
  '--note': z.string().min(1, 'must not be empty').max(1024, 'must be at most 1024 characters').optional(),
  '--idempotency-key': z
    .string()
    .regex(/^[\x20-\x7e]{1,256}$/, 'must be 1 to 256 printable ASCII characters')
    .optional(),
  '--profile': changeSubmissionSchema.shape.profile,
  '--wait': z.boolean().optional(),
});

export interface PreparedSubmission {
  body: SubmitChangeBody;
  idempotencyKey: string | undefined;
  wait: boolean;
}

/** Reads `--set Name=Value` pairs: known names only, each once; the values are checked later. */
export function parseSets(sets: readonly string[]): { values: Record<string, string>; issues: FieldIssue[] } {
  const values: Record<string, string> = {};
  const issues: FieldIssue[] = [];
  for (const set of sets) {
    const equals = set.indexOf('=');
    const name = equals < 0 ? set : set.slice(0, equals);
    if (equals <= 0) {
      issues.push({ field: '--set', rule: `expected Name=Value, got ${JSON.stringify(name)}` });
      continue;
    }
    // Own keys only: `in` also finds Object.prototype's (`constructor`, `__proto__`), whose
    // "rule" would be a function or an object rather than words.
    const ownFlag = Object.hasOwn(OWN_FLAG, name) ? OWN_FLAG[name] : undefined;
    if (ownFlag !== undefined) {
      issues.push({ field: name, rule: ownFlag });
      continue;
    }
    if (!(SET_FIELDS as readonly string[]).includes(name)) {
      const near = MUTABLE_FIELDS.find((field) => field.toLowerCase() === name.toLowerCase());
      issues.push({
        field: name,
        rule: near
          ? `unknown field; did you mean ${near}?`
          : `unknown field; --set takes ${SET_FIELDS.join(', ')}`,
      });
      continue;
    }
    if (name in values) {
      issues.push({ field: name, rule: 'is set more than once' });
      continue;
    }
    values[name] = set.slice(equals + 1);
  }
  return { values, issues };
}

function readJsonFile(flag: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError(flag, [
      { field: flag, rule: `cannot read ${path}: ${(error as Error).message}` },
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError(flag, [
      { field: flag, rule: `${path} is not valid JSON: ${(error as Error).message}` },
    ]);
  }
}

/**
 * Turns the flags into the request body, checked by the same schemas the API applies, so bad
 * input fails here with exit 2 and nothing is sent. Field names in messages are the parameter
 * names (`LocalSubnet`, `IkeConfig.IkeLifetime`) or the flags (`--server`).
 */
export async function prepareSubmission(flags: Record<string, unknown>): Promise<PreparedSubmission> {
  const options = parseFlags(submitFlagsSchema, flags);
  const sets = parseSets(options['--set']);
  const params: Record<string, unknown> = { ...sets.values };
  if (options['--ike-config'] !== undefined) {
    params.IkeConfig = readJsonFile('--ike-config', options['--ike-config']);
  }
  if (options['--ipsec-config'] !== undefined) {
    params.IpsecConfig = readJsonFile('--ipsec-config', options['--ipsec-config']);
  }
  if (options['--psk-file'] !== undefined) {
    params.Psk = await readSecretInput('--psk-file', options['--psk-file'], 'the Psk');
  }

  // Every mistake in one message: the malformed --set pairs, then the values that break a rule.
  const result = parseInWords(mutableParamsSchema, params);
  const issues = [...sets.issues];
  if (!result.success) {
    for (const issue of fieldIssues(result.error)) {
      // "Set at least one field" says nothing new when a --set was refused.
      if (issue.field === '' && sets.issues.length > 0) continue;
      issues.push(issue.field === '' ? { field: '--set', rule: issue.rule } : issue);
    }
  }
  if (issues.length > 0) throw new InvalidInputError('parameters', issues);
  // Sent as given (the API checks the same rules), with true/false as JSON booleans.
  for (const field of BOOLEAN_FIELDS) {
    if (typeof params[field] === 'string') params[field] = params[field] === 'true';
  }
  const body: SubmitChangeBody = {
    ipsecServerId: options['--server'],
    regionId: options['--region'],
    params: params as MutableParamsInput,
  };
  if (options['--note'] !== undefined) body.note = options['--note'];
  if (options['--profile'] !== undefined) body.profile = options['--profile'];
  return { body, idempotencyKey: options['--idempotency-key'], wait: options['--wait'] === true };
}

/** Streams the change's events until a terminal one; returns whether it succeeded. */
export async function waitForChange(client: ApiClient, changeId: string, json: boolean): Promise<boolean> {
  let last: string | undefined;
  let lastCode: string | undefined;
  for await (const event of client.followChange(changeId)) {
    printLine(json ? JSON.stringify(event) : formatEvent(event, false));
    if (isTerminalEvent(event)) {
      last = event.type;
      lastCode = event.code;
    }
  }
  if (!json) printLine(`change ${changeId} ${cell(last)}${lastCode ? ` (${cell(lastCode)})` : ''}`);
  return last === 'succeeded';
}

export function registerSubmitCommand(program: Command): void {
  const command = program
    .command('submit')
    .summary('submit a change to one IPsec server (UpdateIpsecServer), optionally waiting for it')
    .description(
      "Submit one change: an UpdateIpsecServer on one server, queued in the server's lane and carried out " +
        'as a dry run, the apply and a verification. Everything is checked here first by the rules the API ' +
        'applies: bad input exits 2 naming the field, and nothing is sent.\n\n' +
        'The Psk is read only from a file or stdin (--psk-file FILE, --psk-file -), never from a flag: ' +
        'a flag would land in shell history and in process lists. One line ending is stripped.',
    )
    .option('--server <id>', 'IPsec server id (required)')
    .option('--region <id>', 'its region, e.g. cn-shanghai (required)')
    .addOption(
      repeatableOption(
        '--set <Name=Value>',
        `a parameter to set, repeatable: ${SET_FIELDS.join(', ')} (EffectImmediately takes true or false, PskEnabled only true)`,
      ),
    )
    .option(
      '--ike-config <file>',
      'IkeConfig from a JSON file, e.g. {"IkeVersion":"ikev2","IkeLifetime":86400}',
    )
    .option('--ipsec-config <file>', 'IpsecConfig from a JSON file, e.g. {"IpsecPfs":"group14"}')
    .option('--psk-file <file>', 'the new pre-shared key from a file, or - for stdin (never from a flag)')
    .option('--note <text>', 'why: kept with the change and in its audit trail')
    .option('--profile <name>', "the worker's credential profile to change it with (default: default)")
    .option(
      '--idempotency-key <key>',
      'retry-safe submission: the same key and body return the first change instead of a new one',
    )
    .option(
      '--wait',
      "stream the change's events until it ends; exit 0 if it succeeded, 5 otherwise (JSON lines with --json)",
    );
  addConnectionOptions(command)
    .addHelpText(
      'after',
      apiHelp(
        'Output: the new change (--json: {"change": Change, "created": boolean}); with --wait, each event\n' +
          'as a line as it happens (--json: each audit event as one JSON line).\n\n' +
          'Examples:\n' +
          '  ipsec-fleet submit --server iss-bp1x --region cn-shanghai --set LocalSubnet=10.0.0.0/24,10.1.0.0/24 --wait\n' +
          '  ipsec-fleet submit --server iss-bp1x --region cn-shanghai --ike-config ike.json --set EffectImmediately=true\n' +
          '  vault read -field=psk secret/vpn | ipsec-fleet submit --server iss-bp1x --region cn-shanghai --psk-file -',
      ),
    )
    .action(async (_options: Record<string, unknown>, cmd: Command) => {
      await runApiCommand(
        cmd,
        () => prepareSubmission(byFlag(cmd)),
        async ({ client, json }, prepared) => {
          const { change, created } = await client.submitChange(prepared.body, {
            idempotencyKey: prepared.idempotencyKey,
          });
          if (!prepared.wait) {
            if (json) printJson({ change, created });
            else {
              printLine(
                `${created ? 'submitted' : 'already submitted with this idempotency key:'} change ${change.id} ` +
                  `(${change.state}) on ${cell(change.ipsecServerId)} in ${cell(change.regionId)}`,
              );
              printLine(`follow it: ipsec-fleet audit --change ${change.id} --follow`);
            }
            return;
          }
          if (!json) {
            printLine(
              `${created ? 'submitted' : 'already submitted:'} change ${change.id} on ${cell(change.ipsecServerId)}; waiting for it to end`,
            );
          }
          const succeeded = await waitForChange(client, change.id, json);
          if (!succeeded) process.exitCode = ExitCode.notSucceeded;
        },
      );
    });
}

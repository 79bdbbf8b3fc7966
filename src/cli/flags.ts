import type { EventEmitter } from 'node:events';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { type FieldIssue, fieldIssue, InvalidInputError, parseInWords, statedIssues } from '../validation.js';

/**
 * Commander's parsed options keyed by their long flag (`busyRate` → `--busy-rate`), so that a
 * zod error names the flag the user typed.
 */
export function byFlag(command: Command): Record<string, unknown> {
  const values = command.opts();
  const flags: Record<string, unknown> = {};
  for (const option of command.options) {
    if (!option.long) continue;
    const value = values[option.attributeName()];
    if (value !== undefined) flags[option.long] = value;
  }
  return flags;
}

/**
 * Flags as byFlag() reads them (other keys may ride along: a command's arguments), checked by
 * `schema`; throws InvalidInputError naming each bad flag as typed (flagIssues).
 */
export function parseFlags<T extends z.ZodType>(
  schema: T,
  flags: Record<string, unknown>,
  what = 'options',
): z.infer<T> {
  const result = parseInWords(schema, flags);
  if (!result.success) throw new InvalidInputError(what, flagIssues(result.error));
  return result.data;
}

/**
 * zod's issues, a list flag's under the flag's own name. `--roles viewer,foo` (or a repeatable
 * flag given twice) is one flag to the user but a list to zod, whose path `--roles.1` names nothing
 * the user typed: the flag is named, and the entry's place goes into the rule ("value 2: ...").
 * The entry itself is not quoted here, as it may be a secret; a schema that knows it is not
 * quotes it in its own message (roleSchema does).
 */
export function flagIssues(error: z.ZodError): FieldIssue[] {
  return statedIssues(error).map((issue) => {
    const [flag, ...within] = issue.path;
    const plain = fieldIssue(issue);
    if (typeof flag !== 'string' || !flag.startsWith('-') || within.length === 0) return plain;
    const place = within
      .map((key) => (typeof key === 'number' ? `value ${key + 1}` : String(key)))
      .join(', ');
    return { field: flag, rule: `${place}: ${plain.rule}` };
  });
}

/**
 * A flag's number, digits only, as the environment's numbers are: z.coerce.number would take
 * "0x10" as 16, "1e3" as 1000 and " " as 0. `what` says what it counts, for the message.
 */
export function wholeNumberFlag(what = 'a whole number') {
  return z.string().regex(/^\d+$/, `must be ${what} (digits only)`).transform(Number);
}

const repeatables = new WeakSet<Option>();

/**
 * An option each use of which adds a value to a list (`--set A=1 --set B=2`): the one kind
 * refuseRepeatedOptions lets through more than once.
 */
export function repeatableOption(flags: string, description: string): Option {
  const option = new Option(flags, description).argParser((value: string, previous: string[] | undefined) => [
    ...(previous ?? []),
    value,
  ]);
  repeatables.add(option);
  return option;
}

/**
 * The value source commander is told for a flag given more than once. A source, not a set of our
 * own, because commander resets the sources on each parse: a second parse starts clean.
 */
const GIVEN_AGAIN = 'cli (given again)';

/**
 * Makes every option that takes a value, in `program` and all its commands, refuse a second use
 * with exit 2. Commander keeps the last value silently, so `submit --server A --server B` changed B
 * while the user may well have meant A; there is no way to tell, so nothing is done. Applied once
 * to the whole program, it covers commands and options added later without anyone having to
 * remember it. Boolean flags stay idempotent: `--json --json` means one thing.
 *
 * The refusal waits until every option is parsed, just before the action: thrown at the second
 * use, it would come before a `--json` later on the line, and be printed as text to a caller that
 * asked for JSON.
 */
export function refuseRepeatedOptions(program: Command): void {
  markRepeatedOptions(program);
  program.hook('preAction', (_program, actionCommand) => {
    const issues: FieldIssue[] = [];
    for (let command: Command | null = actionCommand; command; command = command.parent) {
      for (const option of command.options) {
        if (command.getOptionValueSource(option.attributeName()) !== GIVEN_AGAIN) continue;
        // The value is left out of the message on purpose: it may be a secret.
        issues.push({ field: option.long ?? option.short ?? option.flags, rule: 'is given more than once' });
      }
    }
    if (issues.length > 0) throw new InvalidInputError('options', issues);
  });
}

function markRepeatedOptions(command: Command): void {
  // A Command is an EventEmitter at run time; its typings declare only `on`.
  const events = command as unknown as EventEmitter;
  for (const option of command.options) {
    const takesValue = option.required || option.optional;
    if (!takesValue || option.variadic || repeatables.has(option)) continue;
    const key = option.attributeName();
    let givenBefore = false;
    // Before commander's own listener stores the value, the source tells whether an earlier use
    // stored one; after it, the source it wrote ('cli') is replaced by the mark.
    events.prependListener(`option:${option.name()}`, () => {
      const source = command.getOptionValueSource(key);
      givenBefore = source === 'cli' || source === GIVEN_AGAIN;
    });
    events.on(`option:${option.name()}`, () => {
      if (givenBefore) command.setOptionValueWithSource(key, command.getOptionValue(key), GIVEN_AGAIN);
    });
  }
  for (const subcommand of command.commands) markRepeatedOptions(subcommand);
}

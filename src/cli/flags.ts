import type { EventEmitter } from 'node:events';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { InvalidInputError } from '../validation.js';

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
 * Makes every option that takes a value, in `command` and all its subcommands, refuse a second
 * use with exit 2. Commander keeps the last value silently, so `submit --server A --server B`
 * changed B while the user may well have meant A; there is no way to tell, so nothing is done.
 * Applied once to the whole program, it covers commands and options added later without anyone
 * having to remember it. Boolean flags stay idempotent: `--json --json` means one thing.
 */
export function refuseRepeatedOptions(command: Command): void {
  for (const option of command.options) {
    const takesValue = option.required || option.optional;
    if (!takesValue || option.variadic || repeatables.has(option)) continue;
    // Before commander's own listener stores the value: its source is 'cli' only if an earlier
    // use stored one. Reading the source keeps no state of ours, so a second parse starts clean.
    // A Command is an EventEmitter at run time; its typings declare only `on`.
    (command as unknown as EventEmitter).prependListener(`option:${option.name()}`, () => {
      if (command.getOptionValueSource(option.attributeName()) !== 'cli') return;
      const flag = option.long ?? option.short ?? option.flags;
      // The value is left out of the message on purpose: it may be a secret.
      throw new InvalidInputError('options', [{ field: flag, rule: 'is given more than once' }]);
    });
  }
  for (const subcommand of command.commands) refuseRepeatedOptions(subcommand);
}

import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { InvalidInputError } from '../../src/validation.js';

/** Every command of the program with its path (`rollout plan`), parents first. */
function commandsOf(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return command.commands.flatMap((sub) => {
    const subPath = [...path, sub.name()];
    return [{ path: subPath, command: sub }, ...commandsOf(sub, subPath)];
  });
}

const REPEATABLE = new Set(['submit --set']);

/** A sentinel the preAction hook throws: reaching it means the parse let the input through. */
class ActionReached extends Error {}

async function parse(args: string[], program: Command = buildProgram()): Promise<unknown> {
  program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  program.hook('preAction', () => {
    throw new ActionReached();
  });
  try {
    await program.parseAsync(args, { from: 'user' });
    return undefined;
  } catch (error) {
    return error;
  }
}

const cases = commandsOf(buildProgram()).flatMap(({ path, command }) =>
  command.options
    .filter((option: Option) => (option.required || option.optional) && option.long !== undefined)
    .map((option: Option) => ({
      path,
      flag: option.long as string,
      // Arguments and options the command requires, so that only the repeat can be at fault: the
      // refusal comes just before the action, after commander's check of required options.
      args: [
        ...command.registeredArguments.filter((argument) => argument.required).map(() => 'x'),
        ...command.options
          .filter((required: Option) => required.mandatory && required.long !== option.long)
          .flatMap((required: Option) => [required.long as string, 'x']),
      ],
    })),
);

describe('a single-value flag given twice', () => {
  it('covers every command that takes one', () => {
    const names = new Set(cases.map((entry) => entry.path.join(' ')));
    for (const name of ['submit', 'list', 'serve', 'sim', 'api', 'rollout plan', 'rollout reject', 'get'])
      expect(names).toContain(name);
  });

  it.each(
    cases
      .filter((entry) => !REPEATABLE.has(`${entry.path.join(' ')} ${entry.flag}`))
      .map((entry) => [`${entry.path.join(' ')} ${entry.flag}`, entry] as const),
  )('%s is refused before any action runs', async (_name, { path, flag, args }) => {
    const error = await parse([...path, ...args, flag, 'V4LUE-ONE', `${flag}=V4LUE-TWO`]);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).issues).toEqual([{ field: flag, rule: 'is given more than once' }]);
    expect((error as Error).message).not.toContain('V4LUE-ONE');
    expect((error as Error).message).not.toContain('V4LUE-TWO');
  });

  it('is refused wherever --json stands, and not held against a later parse', async () => {
    const program = buildProgram();
    const error = await parse(['list', '--limit', '1', '--json', '--limit', '2'], program);
    expect((error as InvalidInputError).issues).toEqual([
      { field: '--limit', rule: 'is given more than once' },
    ]);
    expect(await parse(['list', '--limit', '1'], program)).toBeInstanceOf(ActionReached);
  });

  it('leaves a repeatable one, and boolean flags, alone', async () => {
    expect(await parse(['submit', '--set', 'A=1', '--set', 'B=2', '--json', '--json'])).toBeInstanceOf(
      ActionReached,
    );
  });
});

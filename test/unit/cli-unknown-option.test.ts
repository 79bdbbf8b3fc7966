import { type Command, CommanderError, type Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';

/** Every command that runs an action, with its path (`rollout plan`). */
function leavesOf(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return command.commands.flatMap((sub) => {
    const subPath = [...path, sub.name()];
    return sub.commands.length > 0 ? leavesOf(sub, subPath) : [{ path: subPath, command: sub }];
  });
}

function commandsOf(command: Command): Command[] {
  return command.commands.flatMap((sub) => [sub, ...commandsOf(sub)]);
}

// `api` takes unknown flags as API parameters (parseApiParams refuses `--Psk=` without echoing it).
const TAKES_UNKNOWN_FLAGS = new Set(['api']);

const SECRET = 'Unkn0wn-Flag-Secret-9';

const cases = leavesOf(buildProgram())
  .filter(({ path }) => !TAKES_UNKNOWN_FLAGS.has(path.join(' ')))
  .map(({ path, command }) => ({
    name: path.join(' '),
    // What the command requires, so that the unknown flag is what it stops at.
    args: [
      ...path,
      ...command.registeredArguments.filter((argument) => argument.required).map(() => 'x'),
      ...command.options
        .filter((option: Option) => option.mandatory)
        .flatMap((option: Option) => [option.long as string, 'x']),
    ],
  }));

/** Parses a command line ending in `flag`, with everything the program writes captured. */
async function parseWith(args: readonly string[], flag: string) {
  const program = buildProgram();
  let written = '';
  const capture = (text: string) => {
    written += text;
  };
  // Each command prints its own errors, with the output it was configured with.
  for (const command of [program, ...commandsOf(program)])
    command.configureOutput({ writeErr: capture, writeOut: capture });
  const error = await program
    .parseAsync([...args, flag], { from: 'user' })
    .catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(CommanderError);
  expect((error as CommanderError).code).toBe('commander.unknownOption');
  return { written, message: (error as Error).message };
}

describe('an unknown flag given as --name=value', () => {
  it('covers the commands users type secrets at', () => {
    const names = cases.map((entry) => entry.name);
    for (const name of ['submit', 'list', 'worker', 'serve', 'sim', 'rollout create', 'token create'])
      expect(names).toContain(name);
  });

  it.each(cases.map((entry) => [entry.name, entry.args] as const))(
    '%s names the flag, never the value',
    async (_name, args) => {
      const { written, message } = await parseWith(args, `--Psk=${SECRET}`);
      expect(written + message).not.toContain(SECRET);
      expect(written).toContain("unknown option '--Psk'");
    },
  );
});

describe('an unknown short flag given with its value attached (-Xvalue)', () => {
  it.each(cases.map((entry) => [entry.name, entry.args] as const))(
    '%s names the flag, never the value',
    async (_name, args) => {
      const { written, message } = await parseWith(args, `-P${SECRET}`);
      expect(written + message).not.toContain(SECRET);
      expect(written).toContain("unknown option '-P'");
    },
  );
});

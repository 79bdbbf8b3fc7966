import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateToken } from '../../src/api/auth/tokens.js';
import { buildProgram } from '../../src/cli/program.js';
import { runCli } from '../support/cli.js';

/**
 * Every example in a --help text that can run without a server, run as written by the built
 * binary against an address nothing listens on: exit 4 (no answer) means everything checked
 * locally, flags, ids, files, passed; exit 2 means the example teaches something that fails.
 */

/** Verbs whose examples start servers or write files outside a scratch directory: not run. */
const NOT_RUN = new Set(['sim', 'serve', 'worker', 'token', 'demo']);
/** Nothing listens on port 1 (binding it needs root): a refused connection, at once. */
const NOWHERE = 'http://127.0.0.1:1';

function commandsOf(command: Command): Command[] {
  return [command, ...command.commands.flatMap(commandsOf)];
}

function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (chunk) => (text += chunk) });
  command.outputHelp();
  return text;
}

const helps = commandsOf(buildProgram()).map((command) => ({ name: command.name(), help: helpOf(command) }));

/** Example command lines: `ipsec-fleet ...` on a line of its own, or after a pipe; not continued. */
const examples = [
  ...new Set(
    helps.flatMap(({ help }) =>
      help
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => /^(?:[^|]*\|\s*)?ipsec-fleet \S/.test(line) && !line.endsWith('\\')),
    ),
  ),
];

/** Shell words, double quotes kept together; a pipe's left side becomes stdin, `>` and `&` go. */
function toRun(line: string): { args: string[]; input?: string } {
  const piped = line.includes('|');
  const command = (piped ? line.slice(line.lastIndexOf('|') + 1) : line).replace(/\s*(?:>\s*\S+|&)\s*$/, '');
  const words = [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => (match[1] ?? match[2]) as string);
  expect(words[0]).toBe('ipsec-fleet');
  return { args: words.slice(1), input: piped ? 'Example-Psk-From-A-Pipe-7\n' : undefined };
}

/** The rollout file the rollout verbs' help shows, as a file. */
function rolloutFileOf(help: string): string {
  const start = help.indexOf('A rollout file:\n');
  expect(start).toBeGreaterThan(0);
  const body = help.slice(start + 'A rollout file:\n'.length).split('\n\n')[0] as string;
  return `${body
    .split('\n')
    .map((line) => line.slice(2))
    .join('\n')}\n`;
}

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ipf-help-examples-'));
  const rolloutHelp = helps.find(({ name, help }) => name === 'plan' && help.includes('A rollout file:'));
  writeFileSync(join(dir, 'rollout.yaml'), rolloutFileOf(rolloutHelp?.help ?? ''));
  // As submit's --ike-config help describes it.
  writeFileSync(join(dir, 'ike.json'), '{"IkeVersion":"ikev2","IkeLifetime":86400}\n');
  writeFileSync(join(dir, 'new.psk'), 'Example-Psk-In-A-File-7\n', { mode: 0o600 });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('--help examples', () => {
  it('are found in the help of the verbs that have them', () => {
    const verbs = new Set(examples.map((line) => toRun(line).args[0]));
    for (const verb of [
      'api',
      'submit',
      'get',
      'list',
      'cancel',
      'approve',
      'reject',
      'lane',
      'audit',
      'rollout',
    ])
      expect(verbs).toContain(verb);
  });

  it('name change and rollout ids in the shape they have', () => {
    for (const line of examples) {
      for (const id of line.match(/\b(?:chg|rol)[-_]\S*/g) ?? [])
        expect(id, line).toMatch(/^(?:chg|rol)-[0-9a-z]{22}$/);
    }
  });

  it('describe each command in a sentence, and name every exit 5', () => {
    for (const command of commandsOf(buildProgram())) {
      expect(command.description(), command.name()).toMatch(/^[A-Z]/);
    }
    const exitFive = helps[0]?.help.split('\n  5  ')[1]?.split('\n\n')[0] ?? '';
    for (const verb of ['submit --wait', 'rollout create --watch', 'rollout plan'])
      expect(exitFive).toContain(verb);
  });

  const runnable = examples.filter((line) => !NOT_RUN.has(toRun(line).args[0] as string));

  it.concurrent.each(runnable)('%s passes every local check', { timeout: 60_000 }, async (line) => {
    const { args, input } = toRun(line);
    const isApi = args[0] === 'api';
    const follows = args.includes('--follow');
    const result = await runCli(
      [...args, ...(isApi ? ['--endpoint', NOWHERE] : ['--api', NOWHERE])],
      {
        HOME: dir,
        IPSEC_FLEET_TOKEN: generateToken(),
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI5tHelpExample',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'help-example-secret',
      },
      // --follow keeps trying an API that does not answer (for 15 s): still trying, with nothing
      // said, after 8 s means it got past every local check.
      { cwd: dir, input, killAfterMs: follows ? 8_000 : 30_000 },
    );
    if (follows && result.timedOut) {
      expect(result.stderr, line).toBe('');
      return;
    }
    expect(result.stderr, line).toMatch(isApi ? /TRANSPORT_REFUSED/ : /API_UNREACHABLE/);
    expect(result.code, `${line}\n${result.stderr}`).toBe(4);
  });
});

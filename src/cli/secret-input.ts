import { readFileSync } from 'node:fs';
import { InvalidInputError } from '../validation.js';

/** The flag that read stdin already: a second `-` would get nothing, and fail as a bad secret. */
let stdinTakenBy: string | undefined;

/**
 * A secret (a Psk, an API token) from a file or from stdin (`-`), without the one line ending an
 * editor or echo adds. Secrets are read this way, never from a flag's value, where they would
 * land in shell history and in process lists. Messages name the file, never its content.
 */
export async function readSecretInput(flag: string, path: string, what: string): Promise<string> {
  if (path === '-' && stdinTakenBy !== undefined) {
    throw new InvalidInputError('options', [
      { field: flag, rule: `cannot read stdin too: ${stdinTakenBy} - reads it; give one of them a file` },
    ]);
  }
  let text: string;
  try {
    if (path === '-') {
      stdinTakenBy = flag;
      if (process.stdin.isTTY)
        process.stderr.write(`ipsec-fleet: reading ${what} from stdin (end with Ctrl-D)\n`);
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      text = readFileSync(path, 'utf8');
    }
  } catch (error) {
    throw new InvalidInputError(flag, [
      { field: flag, rule: `cannot read ${path === '-' ? 'stdin' : path}: ${(error as Error).message}` },
    ]);
  }
  return text.replace(/\r?\n$/, '');
}

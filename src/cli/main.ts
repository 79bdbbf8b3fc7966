#!/usr/bin/env node
import { type Command, CommanderError } from 'commander';
import { ExitCode } from './exit-codes.js';
import { buildProgram } from './program.js';
import { reportError } from './report-error.js';

// A reader that stops early (`ipsec-fleet audit --jsonl | head`) is no error of ours. Node.js
// ignores SIGPIPE, so the write fails with EPIPE instead: end quietly, as a command killed by
// SIGPIPE does, but with the exit code decided so far rather than 141, so that a `| head` does not
// fail a `set -o pipefail` script. Here, before any command runs, so that commander's help and
// every command's output are covered; stderr too, where nothing could be reported anyway.
// A command that cleans up when interrupted (the demo stops its children and its private Redis,
// and deletes its keys; a server closes its connections) is stopped as if interrupted, and its
// writes to the closed pipe that follow are let go; any other command ends here.
let closedByReader = false;
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (closedByReader) return;
    if (error.code !== 'EPIPE') throw error;
    closedByReader = true;
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
    else process.exit(process.exitCode ?? ExitCode.ok);
  });
}

/**
 * Whether `--json` was given to the command that failed. Only the commands this parse reached hold
 * values from the command line, so any of them having it is enough; by the time an error arrives
 * here (refuseRepeatedOptions waits for the last option to be parsed) every option is read.
 */
function jsonRequested(command: Command): boolean {
  return command.getOptionValue('json') === true || command.commands.some(jsonRequested);
}

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version arrive as "errors" with exit code 0; usage mistakes are invalid input.
    process.exitCode = error.exitCode === 0 ? ExitCode.ok : ExitCode.invalidInput;
  } else {
    reportError(error, jsonRequested(program));
  }
}

#!/usr/bin/env node
import { type Command, CommanderError } from 'commander';
import { ExitCode } from './exit-codes.js';
import { buildProgram } from './program.js';
import { reportError } from './report-error.js';

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

#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ExitCode } from './exit-codes.js';
import { buildProgram } from './program.js';
import { describeError, exitCodeFor } from './report-error.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version arrive as "errors" with exit code 0; usage mistakes are invalid input.
    process.exitCode = error.exitCode === 0 ? ExitCode.ok : ExitCode.invalidInput;
  } else {
    process.stderr.write(`ipsec-fleet: ${describeError(error)}\n`);
    process.exitCode = exitCodeFor(error);
  }
}

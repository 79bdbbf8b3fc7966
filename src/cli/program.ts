import { Command } from 'commander';
import { packageVersion } from '../package-info.js';
import { registerApiCommand } from './commands/api.js';
import { registerSimCommand } from './commands/sim.js';
import { registerWorkerCommand } from './commands/worker.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

export function buildProgram(): Command {
  const program = new Command()
    .name('ipsec-fleet')
    .description('Change the configuration of many Alibaba Cloud IPsec servers safely.')
    .version(packageVersion)
    .showHelpAfterError()
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();
  registerApiCommand(program);
  registerSimCommand(program);
  registerWorkerCommand(program);
  return program;
}

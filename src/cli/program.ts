import type { Command } from 'commander';
import { packageVersion } from '../package-info.js';
import { CliCommand } from './command.js';
import { registerApiCommand } from './commands/api.js';
import { registerApproveCommands } from './commands/approve.js';
import { registerAuditCommand } from './commands/audit.js';
import { registerCancelCommand } from './commands/cancel.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerGetCommand } from './commands/get.js';
import { registerLaneCommand } from './commands/lane.js';
import { registerListCommand } from './commands/list.js';
import { registerRolloutCommand } from './commands/rollout.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSimCommand } from './commands/sim.js';
import { registerSubmitCommand } from './commands/submit.js';
import { registerTokenCommand } from './commands/token.js';
import { registerWorkerCommand } from './commands/worker.js';
import { EXIT_CODES_HELP } from './exit-codes.js';
import { refuseRepeatedOptions } from './flags.js';

export function buildProgram(): Command {
  const program = new CliCommand()
    .name('ipsec-fleet')
    .description('Change the configuration of many Alibaba Cloud IPsec servers safely.')
    .version(packageVersion)
    .showHelpAfterError()
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();
  registerApiCommand(program);
  registerSimCommand(program);
  registerWorkerCommand(program);
  registerServeCommand(program);
  registerTokenCommand(program);
  registerSubmitCommand(program);
  registerGetCommand(program);
  registerListCommand(program);
  registerCancelCommand(program);
  registerApproveCommands(program);
  registerLaneCommand(program);
  registerAuditCommand(program);
  registerRolloutCommand(program);
  registerDemoCommand(program);
  // Last, so that it reaches every option of every command registered above.
  refuseRepeatedOptions(program);
  return program;
}

import type { Command } from 'commander';
import { z } from 'zod';
import { roleSchema } from '../../api/auth/roles.js';
import { createToken, tokenNameSchema } from '../../api/auth/tokens.js';
import { envSchema, loadConfig } from '../../config.js';
import { InvalidInputError } from '../../validation.js';
import { EXIT_CODES_HELP } from '../exit-codes.js';
import { byFlag, parseFlags } from '../flags.js';

const tokenCreateFlagsSchema = z.strictObject({
  '--name': tokenNameSchema,
  '--roles': z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((role) => role.trim())
        .filter((role) => role !== ''),
    )
    .pipe(z.array(roleSchema).min(1, 'must name at least one role')),
  '--file': envSchema.shape.IPSEC_FLEET_TOKENS_FILE.unwrap().optional(),
});

export function registerTokenCommand(program: Command): void {
  const token = program
    .command('token')
    .summary('manage API tokens')
    .description(
      'Manage the bearer tokens of `ipsec-fleet serve`. The tokens file holds their SHA-256 only.',
    );

  token
    .command('create')
    .summary('create a token: print it once, add its hash to the tokens file')
    .description(
      'Create an API token (ipf_ and 43 base64url characters), print it once on stdout and add ' +
        '{name, roles, sha256} to the tokens file, which is created with mode 0600 when missing. ' +
        'The name is the audit actor of everything done with the token, and must be new in the file. ' +
        'Roles: viewer (reads), submitter (viewer + submit, cancel), approver (viewer + approvals), ' +
        'admin (everything). A running `serve` picks the token up on SIGHUP.',
    )
    .requiredOption('--name <name>', 'who uses the token (a person or a pipeline)')
    .requiredOption('--roles <roles>', 'comma-separated roles: viewer, submitter, approver, admin')
    .option('--file <path>', 'tokens file (default: IPSEC_FLEET_TOKENS_FILE)')
    .addHelpText(
      'after',
      '\nExample:\n  ipsec-fleet token create --name ci-deploy --roles submitter --file /etc/ipsec-fleet/tokens.json\n' +
        EXIT_CODES_HELP,
    )
    .action(async (_options: Record<string, unknown>, command: Command) => {
      const flags = parseFlags(tokenCreateFlagsSchema, byFlag(command));
      const file = flags['--file'] ?? loadConfig().IPSEC_FLEET_TOKENS_FILE;
      if (!file) {
        throw new InvalidInputError('options', [
          { field: '--file', rule: 'is required (or set IPSEC_FLEET_TOKENS_FILE)' },
        ]);
      }
      const source = flags['--file'] === undefined ? 'IPSEC_FLEET_TOKENS_FILE' : '--file';
      const name = flags['--name'];
      const roles = flags['--roles'];
      const created = await createToken(file, { name, roles }, source);
      process.stdout.write(`${created}\n`);
      process.stderr.write(
        `token ${JSON.stringify(name)} (${roles.join(', ')}) added to ${file}; it is shown only this once\n`,
      );
    });
}

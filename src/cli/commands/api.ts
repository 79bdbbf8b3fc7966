import type { Command } from 'commander';
import { z } from 'zod';
import { AliyunClient } from '../../aliyun/client.js';
import { credentialsFromEnv } from '../../aliyun/credentials.js';
import { resolveEndpoint } from '../../aliyun/endpoint.js';
import { AliyunApiError } from '../../aliyun/errors.js';
import { loadConfig } from '../../config.js';
import { withSecretOmitted } from '../../ipsec/omit-secret.js';
import type { PskFingerprint } from '../../ipsec/psk.js';
import { updateIpsecServerParamsSchema } from '../../ipsec/update-params.js';
import { toWireParams } from '../../ipsec/wire.js';
import { millisecondsSchema } from '../../orchestrator/policy.js';
import { SecretBox } from '../../orchestrator/secret-box.js';
import { InvalidInputError, parseOrThrow } from '../../validation.js';
import { parseApiParams } from '../api-params.js';
import { EXIT_CODES_HELP, ExitCode } from '../exit-codes.js';
import { byFlag, parseFlags, wholeNumberFlag } from '../flags.js';
import { readSecretInput } from '../secret-input.js';

const apiFlagsSchema = z.strictObject({
  '--region': z
    .string()
    .regex(/^[a-z]{2,}(-[a-z0-9]+)+$/, 'must be a region id such as cn-shanghai')
    .optional(),
  '--endpoint': z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  '--signature': z.enum(['v3', 'v1'], { error: 'must be v3 or v1' }).default('v3'),
  '--method': z.enum(['GET', 'POST'], { error: 'must be GET or POST' }).default('POST'),
  '--timeout': wholeNumberFlag('a whole number of milliseconds')
    .pipe(millisecondsSchema(z.number().positive('must be positive')))
    .optional(),
  '--show-secrets': z.boolean().optional(),
  '--psk-file': z.string().min(1, 'must name a file, or - for stdin').optional(),
});

/** The cloud's action names are PascalCase words: anything else is a typo, refused before signing. */
const actionSchema = z
  .string()
  .regex(
    /^[A-Z][A-Za-z0-9]{0,127}$/,
    'must be an API action name such as UpdateIpsecServer (letters and digits, starting with a capital)',
  );

/**
 * The answer with every Psk in it (ListIpsecServers lists each server's) replaced by its label:
 * printed as is, the keys of a whole fleet would land in terminals, CI logs and shell captures.
 */
export function redactPsks(value: unknown, label: PskFingerprint): unknown {
  if (Array.isArray(value)) return value.map((item) => redactPsks(item, label));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      key.toLowerCase() === 'psk' && typeof item === 'string' ? label(item) : redactPsks(item, label),
    ]),
  );
}

export function registerApiCommand(program: Command): void {
  program
    .command('api')
    .summary('send one signed Alibaba Cloud VPC API call and print its JSON response')
    .description(
      'Send one signed call to the VPC API, like aliyun-cli, and print the response body as JSON on stdout.\n' +
        'UpdateIpsecServer parameters are validated before anything is sent; other actions pass through as given.\n' +
        'Credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and, for STS,\n' +
        'ALIBABA_CLOUD_SECURITY_TOKEN.',
    )
    .argument('<Action>', 'API action, e.g. UpdateIpsecServer, ListIpsecServers, DescribeRegions')
    .option('--region <id>', 'region id; picks the endpoint and fills RegionId when it is not given')
    .option(
      '--endpoint <url>',
      'explicit endpoint URL, scheme included (default: the official rule for the region)',
    )
    .option('--signature <version>', 'v3 (ACS3-HMAC-SHA256) or v1 (HMAC-SHA1)', 'v3')
    .option('--method <method>', 'HTTP method for --signature v1: GET or POST', 'POST')
    .option('--timeout <ms>', 'overall deadline of the call in milliseconds')
    .option(
      '--psk-file <file>',
      'the Psk parameter from a file, or - for stdin (never --Psk: a flag lands in shell history and ps)',
    )
    .option(
      '--show-secrets',
      'print the Psks of the answer in clear; without it each is printed as its label (hmac:...)',
    )
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      '\nAPI parameters: --Name value, e.g. --RegionId cn-shanghai --IpsecServerId iss-1 --DryRun true; the Psk\n' +
        'only from a file or stdin with --psk-file, never as --Psk.\n' +
        "Psks in the answer (ListIpsecServers lists each server's) are printed as labels, hmac: and 16 hex\n" +
        'digits, unless --show-secrets is given; with IPSEC_FLEET_SECRET_KEY set they are the labels plans and\n' +
        'the audit trail show, else they compare only within one output.\n' +
        'Examples:\n  ipsec-fleet api UpdateIpsecServer --RegionId cn-shanghai --IpsecServerId iss-1 --LocalSubnet 10.0.0.0/24 --DryRun true\n' +
        '  ipsec-fleet api UpdateIpsecServer --RegionId cn-shanghai --IpsecServerId iss-1 --psk-file new.psk --DryRun true\n' +
        EXIT_CODES_HELP,
    )
    .action(async (action: string, _options: Record<string, unknown>, command: Command) => {
      parseOrThrow(z.object({ Action: actionSchema }), { Action: action }, 'arguments');
      const flags = parseFlags(apiFlagsSchema, byFlag(command));
      const config = loadConfig();
      let params: Record<string, string | number | boolean | undefined> = parseApiParams(
        command.args.slice(1),
      );
      if (params.Psk !== undefined) {
        throw new InvalidInputError('arguments', [
          {
            field: 'Psk',
            rule:
              'is never taken from a flag, where it would land in shell history and process lists: ' +
              'use --psk-file FILE, or --psk-file - to read it from stdin',
          },
        ]);
      }
      if (flags['--psk-file'] !== undefined) {
        params.Psk = await readSecretInput('--psk-file', flags['--psk-file'], 'the Psk');
      }
      if (flags['--region'] && params.RegionId === undefined) params.RegionId = flags['--region'];
      if (action === 'UpdateIpsecServer') {
        params = toWireParams(
          parseOrThrow(updateIpsecServerParamsSchema, params, 'UpdateIpsecServer parameters'),
        );
      }
      const regionId =
        flags['--region'] ?? (typeof params.RegionId === 'string' ? params.RegionId : undefined);
      const endpoint = resolveEndpoint({
        regionId,
        override: flags['--endpoint'] ?? config.IPSEC_FLEET_ENDPOINT,
      });
      const client = new AliyunClient({
        credentials: credentialsFromEnv(process.env),
        endpoint,
        signatureVersion: flags['--signature'],
        v1Method: flags['--method'],
        timeoutMs: flags['--timeout'] ?? config.IPSEC_FLEET_HTTP_TIMEOUT_MS,
      });
      try {
        const body = await client.call(action, params);
        const printed = flags['--show-secrets']
          ? body
          : redactPsks(body, SecretBox.fromKey(config.IPSEC_FLEET_SECRET_KEY).fingerprint);
        process.stdout.write(`${JSON.stringify(printed, null, 2)}\n`);
      } catch (error) {
        if (!(error instanceof AliyunApiError)) throw error;
        // The cloud may quote the key it refused; it is shown only where the user asked for secrets.
        const shown =
          typeof params.Psk === 'string' && !flags['--show-secrets']
            ? withSecretOmitted(error, params.Psk)
            : error;
        const { HttpStatus, Code, Message, RequestId } = shown.toJSON();
        process.stdout.write(`${JSON.stringify({ HttpStatus, Code, Message, RequestId }, null, 2)}\n`);
        // A dry run that passed comes back as an error response, but it is the success of a dry run.
        process.exitCode = error.code === 'DryRunOperation' ? ExitCode.ok : ExitCode.cloudApiError;
      } finally {
        await client.close();
      }
    });
}

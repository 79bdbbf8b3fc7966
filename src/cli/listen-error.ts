import { ConfigError } from '../config.js';
import { InvalidInputError } from '../validation.js';

/**
 * A listen error caused by the address asked for, as the input error it is: the flag or variable
 * that named the address, and the rule it broke. Others (EMFILE, a bug) stay what they are.
 */
export function listenErrorAsInput(
  error: unknown,
  address: { host: string; port: number; hostFrom: string; portFrom: string },
): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const host = { field: address.hostFrom, value: address.host };
  const port = { field: address.portFrom, value: String(address.port) };
  const rules: Record<string, [typeof host, string]> = {
    ENOTFOUND: [host, 'does not resolve to an address (DNS)'],
    EAI_AGAIN: [host, 'could not be resolved (DNS did not answer)'],
    EAI_FAIL: [host, 'could not be resolved (DNS failed)'],
    EADDRNOTAVAIL: [host, 'is not an address of this machine'],
    EADDRINUSE: [port, 'is in use by another process on this address'],
    EACCES: [port, 'needs privileges to listen on (ports below 1024)'],
  };
  const rule = code === undefined ? undefined : rules[code];
  if (!rule) return error;
  const [input, text] = rule;
  const issue = { field: input.field, rule: `${input.value} ${text}` };
  return input.field.startsWith('--') ? new InvalidInputError('options', [issue]) : new ConfigError([issue]);
}

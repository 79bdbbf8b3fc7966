import { Command, type ErrorOptions } from 'commander';
import { InvalidInputError } from '../validation.js';

declare module 'commander' {
  interface Command {
    /** Commander's own (left out of its typings): reports an unknown flag and ends the parse. */
    unknownOption(flag: string): void;
  }
}

/**
 * Commander's Command, with two changes to how it reports a usage mistake. An unknown flag is
 * named without its value: given as `--Psk=...`, `--api-token=...` or `-P...`, what follows the
 * flag may be a secret, and commander's message quotes the argument whole on stderr. And under
 * `--json` the mistake is a problem JSON object on stderr, as every other error of a command is,
 * instead of commander's text and the whole help. Subcommands are made by createCommand, so are
 * ones of these.
 */
export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override unknownOption(flag: string): void {
    // A short flag takes its value attached (`-Pvalue`), a long one after an `=`.
    super.unknownOption(flag.startsWith('--') ? (flag.split('=', 1)[0] as string) : flag.slice(0, 2));
  }

  override error(message: string, errorOptions?: ErrorOptions): never {
    // Commander checks the line for mistakes once the command's own flags are read, so a --json
    // anywhere on it is set by now.
    if (this.getOptionValue('json') !== true) return super.error(message, errorOptions);
    const rule = message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    // The flag (`'--limit <n>'` names it with its placeholder) or argument that commander quotes.
    const quoted = /'([^']*)'/.exec(rule)?.[1];
    const field =
      errorOptions?.code === 'commander.excessArguments'
        ? 'arguments'
        : quoted?.startsWith('-')
          ? (quoted.split(' ', 1)[0] as string)
          : (quoted ?? 'arguments');
    throw new InvalidInputError('command line', [{ field, rule }]);
  }
}

import { Command } from 'commander';

declare module 'commander' {
  interface Command {
    /** Commander's own (left out of its typings): reports an unknown flag and ends the parse. */
    unknownOption(flag: string): void;
  }
}

/**
 * Commander's Command, except that an unknown flag is named without its value. Given as
 * `--Psk=...` or `--api-token=...`, what follows the `=` may be a secret, and commander's message
 * quotes the argument whole on stderr. Subcommands are made by createCommand, so are ones of these.
 */
export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override unknownOption(flag: string): void {
    super.unknownOption(flag.split('=', 1)[0] as string);
  }
}

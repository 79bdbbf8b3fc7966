import type { Command } from 'commander';

/**
 * Commander's parsed options keyed by their long flag (`busyRate` → `--busy-rate`), so that a
 * zod error names the flag the user typed.
 */
export function byFlag(command: Command): Record<string, unknown> {
  const values = command.opts();
  const flags: Record<string, unknown> = {};
  for (const option of command.options) {
    if (!option.long) continue;
    const value = values[option.attributeName()];
    if (value !== undefined) flags[option.long] = value;
  }
  return flags;
}

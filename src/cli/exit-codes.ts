/** The CLI's exit codes: stable, documented in `--help`, and relied on by scripts and CI jobs. */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  invalidInput: 2,
  cloudApiError: 3,
  transportError: 4,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success (a passed dry run, DryRunOperation, counts as success)
  1  unexpected error
  2  invalid input: a flag, parameter or environment variable broke a rule (the message names it)
  3  the cloud API answered with an error (printed as JSON on stdout)
  4  no answer from the cloud API (timeout, connection reset or refused, DNS, TLS)
`;

/** The CLI's exit codes: stable, documented in `--help`, and relied on by scripts and CI jobs. */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  invalidInput: 2,
  /** `api`: the cloud answered with an error; the API verbs: the ipsec-fleet API answered 4xx/5xx. */
  cloudApiError: 3,
  apiError: 3,
  /** No answer from the cloud (`api`) or from the ipsec-fleet API (the API verbs). */
  transportError: 4,
  apiUnreachable: 4,
  /**
   * `submit --wait`: the change ended in a state other than succeeded; `rollout create --watch`:
   * the rollout ended other than completed; `rollout plan`: planning did not end in planned.
   */
  notSucceeded: 5,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success (for \`api\`, a passed dry run, DryRunOperation, counts as success)
  1  unexpected error
  2  invalid input: a flag, parameter, environment variable or config file broke a rule
     (the message names it; nothing was sent)
  3  the API answered with an error: for \`api\` the cloud's (printed as JSON on stdout), for the
     other verbs the ipsec-fleet API's problem (printed on stderr; as JSON with --json)
  4  no answer from the API (timeout, connection reset or refused, DNS, TLS)
  5  submit --wait: the change ended in a state other than succeeded; rollout create --watch:
     the rollout ended other than completed; rollout plan: planning did not end in planned
`;

import type { z } from 'zod';
import { IpsecFleetError } from './errors.js';
import { ruleInWords, sizeRule } from './rules-in-words.js';

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `IkeConfig.IkeLifetime`; empty for the whole input. */
  field: string;
  /** The rule the value broke, in words a user can act on. */
  rule: string;
}

/**
 * Whether zod's int() raised the issue for a number past 2^53. It does so under the int's own
 * message ("must be a whole number"), which was written for 1.5, not for a whole number too big.
 */
function isSafeRangeIssue(issue: z.core.$ZodIssue): boolean {
  return (
    (issue.code === 'too_big' && issue.maximum === Number.MAX_SAFE_INTEGER) ||
    (issue.code === 'too_small' && issue.minimum === Number.MIN_SAFE_INTEGER)
  );
}

/**
 * The issues worth a message, in zod's order. A number past 2^53 breaks int()'s range as well as
 * the schema's own bound, when it has one ("must be at most 3600000"): one mistake, one message,
 * the schema's.
 */
export function statedIssues(error: z.ZodError): z.core.$ZodIssue[] {
  return error.issues.filter(
    (issue) =>
      !isSafeRangeIssue(issue) ||
      !error.issues.some(
        (other) => other !== issue && other.path.map(String).join('.') === issue.path.map(String).join('.'),
      ),
  );
}

/** The rule one issue states: its message, except for int()'s range (see isSafeRangeIssue). */
export function issueRule(issue: z.core.$ZodIssue): string {
  if (issue.code === 'too_big' && isSafeRangeIssue(issue))
    return sizeRule('at most', issue.origin, issue.maximum, issue.inclusive);
  if (issue.code === 'too_small' && isSafeRangeIssue(issue))
    return sizeRule('at least', issue.origin, issue.minimum, issue.inclusive);
  return issue.message;
}

export function fieldIssue(issue: z.core.$ZodIssue): FieldIssue {
  const path = issue.path.map(String).join('.');
  // zod reports unknown keys on the parent object; name the keys themselves so the user sees them.
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => (path ? `${path}.${key}` : key));
    return { field: keys.join(', '), rule: 'unknown field' };
  }
  return { field: path, rule: issueRule(issue) };
}

/** One FieldIssue for each of statedIssues(error), in the same order. */
export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return statedIssues(error).map(fieldIssue);
}

export function describeIssues(issues: FieldIssue[]): string {
  return issues.map((issue) => (issue.field ? `${issue.field}: ${issue.rule}` : issue.rule)).join('; ');
}

/** Input that failed its schema at a border (HTTP body, CLI flag, env variable, config file). */
export class InvalidInputError extends IpsecFleetError {
  readonly issues: FieldIssue[];

  constructor(what: string, issues: FieldIssue[]) {
    super('INVALID_INPUT', `invalid ${what}: ${describeIssues(issues)}`);
    this.issues = issues;
  }
}

/**
 * safeParse for input from outside: an issue the schema did not word itself is worded by
 * ruleInWords, never in zod's own words.
 */
export function parseInWords<T extends z.ZodType>(
  schema: T,
  input: unknown,
): z.ZodSafeParseResult<z.output<T>> {
  return schema.safeParse(input, { error: ruleInWords });
}

/** Parse at the border: returns the typed value or throws InvalidInputError naming every bad field. */
export function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown, what: string): z.infer<T> {
  const result = parseInWords(schema, input);
  if (!result.success) throw new InvalidInputError(what, fieldIssues(result.error));
  return result.data;
}

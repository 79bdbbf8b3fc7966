import type { z } from 'zod';
import { IpsecFleetError } from './errors.js';
import { ruleInWords } from './rules-in-words.js';

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `IkeConfig.IkeLifetime`; empty for the whole input. */
  field: string;
  /** The rule the value broke, in words a user can act on. */
  rule: string;
}

export function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    // zod reports unknown keys on the parent object; name the keys themselves so the user sees them.
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((key) => (path ? `${path}.${key}` : key));
      return { field: keys.join(', '), rule: 'unknown field' };
    }
    return { field: path, rule: issue.message };
  });
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

import type { z } from 'zod';

const TYPE_RULES: Readonly<Record<string, string>> = {
  object: 'must be an object',
  record: 'must be an object',
  array: 'must be a list',
  string: 'must be a string',
  number: 'must be a number',
  int: 'must be a whole number',
  boolean: 'must be true or false',
};

/** A bound, in words: `must be at least 1`, `must have at most 16 entries`, `must not be empty`. */
export function sizeRule(
  bound: 'at least' | 'at most',
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
): string {
  if (origin === 'string')
    return limit === 1 && bound === 'at least' ? 'must not be empty' : `must be ${bound} ${limit} characters`;
  if (origin === 'array' || origin === 'set') {
    return limit === 1 && bound === 'at least' ? 'must not be empty' : `must have ${bound} ${limit} entries`;
  }
  if (limit === 0 && bound === 'at least')
    return inclusive === false ? 'must be positive' : 'must not be negative';
  if (inclusive === false) return `must be ${bound === 'at least' ? 'more' : 'less'} than ${limit}`;
  return `must be ${bound} ${limit}`;
}

function inner(issues: readonly z.core.$ZodIssue[]): string {
  const rules = [...new Set(issues.map((issue) => issue.message))];
  return rules.length > 0 ? ` (${rules.join('; ')})` : '';
}

/**
 * A rule, in words, for each kind of issue a schema reports with zod's own message ("Too small:
 * expected number to be >=1", "Invalid input: expected object, received array"). A message a
 * schema gives itself wins over this map; every border parses with it (parseInWords, the API's
 * validator), so no user is shown zod's wording.
 */
export const ruleInWords: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return TYPE_RULES[issue.expected] ?? `must be of type ${issue.expected}`;
    case 'too_small':
      return sizeRule('at least', issue.origin, issue.minimum, issue.inclusive);
    case 'too_big':
      return sizeRule('at most', issue.origin, issue.maximum, issue.inclusive);
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' && issue.pattern
        ? `must match the pattern ${issue.pattern}`
        : `must be a valid ${issue.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'unrecognized_keys':
      return 'unknown field';
    case 'invalid_union': {
      // What each accepted form required, e.g. "must not be negative or must be a percentage".
      const rules = [...new Set(issue.errors.map((branch) => branch[0]?.message).filter(Boolean))];
      return rules.length > 0 ? rules.join(' or ') : 'is not one of the accepted forms';
    }
    // The path already names the key or entry; the rule it broke comes from its own schema.
    case 'invalid_key':
      return `is not a valid key${inner(issue.issues)}`;
    case 'invalid_element':
      return `has an invalid entry${inner(issue.issues)}`;
    default:
      return 'is invalid';
  }
};

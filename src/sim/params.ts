import { REQUIRED_RULE } from '../ipsec/field-rules.js';
import { type FieldIssue, InvalidInputError } from '../validation.js';
import { type SimError, simErrors } from './errors.js';

/**
 * Turns the project's validation errors into the cloud's answers. The same schemas check a change
 * in the producer API and a call here (src/ipsec), so the two can never disagree on what is valid;
 * only the wording of the answer is the cloud's:
 *
 * - a required parameter absent → `MissingParameter` naming it (any missing one wins over invalid
 *   ones, as the cloud checks presence first);
 * - a field the seed's error table has its own code for → `IllegalParam.<Field>` with its message;
 * - anything else → `InvalidParameter` naming the field and the rule it broke.
 */

/** Fields with a documented `IllegalParam.<Field>` code, whose message shows the value given. */
const ILLEGAL_PARAM_FIELDS = new Set(['LocalSubnet']);

function topField(issue: FieldIssue): string {
  const dot = issue.field.indexOf('.');
  return dot < 0 ? issue.field : issue.field.slice(0, dot);
}

export function toSimError(error: InvalidInputError, params: Readonly<Record<string, string>>): SimError {
  const issues = error.issues;
  const missing = issues.find((issue) => issue.rule === REQUIRED_RULE && !issue.field.includes('.'));
  if (missing) return simErrors.missingParameter(missing.field);
  const first = issues[0];
  if (!first) return simErrors.invalidParameter('(request)', error.message);
  const field = topField(first);
  const given = params[field];
  if (ILLEGAL_PARAM_FIELDS.has(field) && given !== undefined) return simErrors.illegalParam(field, given);
  if (first.rule === 'unknown field')
    return simErrors.invalidParameter(first.field, 'is not a parameter of this action');
  return simErrors.invalidParameter(first.field || '(request)', first.rule);
}

/** Runs a project parser over wire parameters, answering its InvalidInputError as the cloud would. */
export function parseParams<T>(
  parse: (wire: Record<string, string>) => T,
  params: Record<string, string>,
): T {
  try {
    return parse(params);
  } catch (error) {
    if (error instanceof InvalidInputError) throw toSimError(error, params);
    throw error;
  }
}

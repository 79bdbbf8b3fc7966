import { z } from 'zod';

/**
 * Building blocks shared by the parameter schemas. Each one words its own errors as a rule a user
 * can act on ("must be an integer from 0 to 86400 (got 86401)"); the field's name comes from the
 * issue path, which fieldIssues() in src/validation.ts puts in front of it.
 *
 * Values arrive in two shapes: typed (API body, library callers) and as wire strings (the CLI, the
 * simulator receiving a signed request). Booleans and the two JSON-valued configs therefore take
 * both, and every schema outputs the typed form.
 */

/** The rule reported for a required field that is absent. */
export const REQUIRED_RULE = 'is required';

export function stringField(rule = 'must be a string') {
  return z.string({ error: (issue) => (issue.input === undefined ? REQUIRED_RULE : rule) });
}

export function nonEmptyString() {
  return stringField().min(1, 'must not be empty');
}

/** A UTF-16 surrogate not part of a pair (in `u` mode a pair is one code point, outside the range). */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * JSON can escape a lone surrogate, but no UTF-8 text holds one: Redis could not store the text as
 * given, and the transition scripts' JSON decoder (cjson) refuses it, which would be a 500.
 */
export const WELL_FORMED_RULE = 'must be Unicode text: it holds a lone UTF-16 surrogate';
export const isWellFormed = (value: string): boolean => !LONE_SURROGATE.test(value);

/**
 * Free text of 1 to `max` characters. The length rule is worded here: stringField's own error
 * would otherwise answer a text that is too long with "must be a string".
 */
export function boundedText(max: number) {
  return nonEmptyString()
    .max(max, `must be at most ${max} characters`)
    .refine(isWellFormed, WELL_FORMED_RULE);
}

/** `true`/`false` or the wire strings `'true'`/`'false'`, output as a boolean. */
export function wireBoolean() {
  return z
    .union([z.boolean(), z.enum(['true', 'false'])], { error: booleanRule('must be true or false') })
    .transform((value) => value === true || value === 'true');
}

/** Only `true` (or `'true'`): for flags the API documents with a single valid value. */
export function wireTrue(rule: string) {
  return z
    .union([z.literal(true), z.literal('true')], { error: booleanRule(rule) })
    .transform((): true => true);
}

function booleanRule(rule: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? REQUIRED_RULE : `${rule} (got ${shown(issue.input)})`;
}

/**
 * An integer in [min, max], as a number only: inside the JSON configs a lifetime of `"3600"` is a
 * mistake worth reporting, and callers that read wire strings convert them first.
 */
export function intInRange(min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    issue.input === undefined
      ? REQUIRED_RULE
      : `must be an integer from ${min} to ${max} (got ${shown(issue.input)})`;
  return z.int({ error }).min(min, { error }).max(max, { error });
}

/** One of a fixed list; the message lists the allowed values. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (issue) => `must be one of ${values.join(', ')} (got ${shown(issue.input)})`,
  });
}

/**
 * An object given either as such or as a JSON string, validated by `schema`. The API documents
 * IkeConfig/IpsecConfig as JSON strings, while the HTTP API and library callers pass objects.
 */
export function jsonObjectField<T extends z.ZodType>(schema: T) {
  return z
    .union([z.string(), z.custom<z.input<T>>(isPlainObject)], {
      error: (issue) =>
        issue.input === undefined
          ? REQUIRED_RULE
          : `must be an object or a JSON object string (got ${typeName(issue.input)})`,
    })
    .transform((value, ctx): unknown => {
      if (typeof value !== 'string') return value;
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch (error) {
        ctx.addIssue(`must be valid JSON: ${(error as Error).message}`);
        return z.NEVER;
      }
      if (!isPlainObject(parsed)) {
        ctx.addIssue(`must be a JSON object, e.g. {"...": ...} (got ${typeName(parsed)})`);
        return z.NEVER;
      }
      return parsed;
    })
    .pipe(schema);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** A short rendering of a bad value for an error message (never used for secrets). */
export function shown(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 61)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'nothing';
  return typeName(value);
}

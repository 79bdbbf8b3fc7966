import type { z } from 'zod';
import { REQUIRED_RULE } from '../ipsec/field-rules.js';
import { TextMemo } from '../text-memo.js';
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

interface FieldPlan {
  name: string;
  schema: z.ZodType;
  required: boolean;
  /** Wire value → parsed value, for fields whose values repeat from call to call. */
  memory: TextMemo<unknown> | undefined;
}

/**
 * Parsed values are shared between calls through the memory; every call gets its own copy so
 * that whatever keeps a call's params (histories, remembered applies) can never see another's.
 */
function detached(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(detached);
  const copy: Record<string, unknown> = { ...value };
  for (const key in copy) {
    const inner = copy[key];
    if (typeof inner === 'object' && inner !== null) copy[key] = detached(inner);
  }
  return copy;
}

/** Marks a field the wire does not give, in a call's list of field values. */
const ABSENT = Symbol('absent');

/**
 * The same result as `parse` (which must be `schema`'s own parser), with less work for values
 * seen before. A rollout sends one change to many servers, so LocalSubnet, IkeConfig and the
 * like arrive again and again with the same text, and running their rules (CIDR parsing, JSON,
 * nested schemas) for each call was the largest part of the simulator's own CPU per call.
 *
 * Each field is checked on its own by its own schema, the values named in `remember` once per
 * distinct text. Anything that is not a plain success (a missing or unknown field, an invalid
 * value) goes through `parse`, so every refusal is worded exactly as the whole schema words it.
 * A schema this cannot mirror field by field (object-level refinements, defaults) is always
 * parsed whole.
 */
export function rememberingParser<T>(
  schema: z.ZodObject,
  parse: (wire: Record<string, string>) => T,
  remember: readonly string[],
): (wire: Record<string, string>) => T {
  if ((schema.def.checks?.length ?? 0) > 0) return parse;
  const fields: FieldPlan[] = [];
  for (const name of Object.keys(schema.shape)) {
    const fieldSchema = schema.shape[name] as z.ZodType;
    const absent = fieldSchema.safeParse(undefined);
    // A default would have to be filled in for an absent field; leave that to the schema.
    if (absent.success && absent.data !== undefined) return parse;
    fields.push({
      name,
      schema: fieldSchema,
      required: !absent.success,
      memory: remember.includes(name) ? new TextMemo() : undefined,
    });
  }

  const indexOf = new Map(fields.map((field, index) => [field.name, index]));
  const requiredCount = fields.filter((field) => field.required).length;

  return (wire) => {
    // Only the fields the call gives are looked at, then placed in the schema's order.
    const values: unknown[] = fields.map(() => ABSENT);
    let required = 0;
    for (const name in wire) {
      const index = indexOf.get(name);
      const value = wire[name];
      // A field the schema does not know: its refusal is the schema's to word.
      if (index === undefined || value === undefined) return parse(wire);
      const field = fields[index] as FieldPlan;
      const memory = field.memory;
      let data = memory?.get(value);
      if (data === undefined) {
        const result = field.schema.safeParse(value);
        if (!result.success) return parse(wire);
        data = result.data;
        memory?.set(value, data);
      }
      values[index] = memory ? detached(data) : data;
      if (field.required) required++;
    }
    if (required !== requiredCount) return parse(wire);
    const parsed: Record<string, unknown> = {};
    for (let index = 0; index < fields.length; index++) {
      const data = values[index];
      if (data !== ABSENT) parsed[(fields[index] as FieldPlan).name] = data;
    }
    return parsed as T;
  };
}

import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fieldIssues, parseInWords } from '../../src/validation.js';

/** zod's own wording, which no user should see. */
const ZOD_WORDING = /Too (?:small|big)|Invalid input|expected|received|[<>]=/;

/** `field: rule` for each issue parseInWords reports on `input` (none when it passes). */
function rulesOf(schema: z.ZodType, input: unknown): string[] {
  const result = parseInWords(schema, input);
  return result.success ? [] : fieldIssues(result.error).map(({ field, rule }) => `${field}: ${rule}`);
}

describe("zod's issues in the project's words", () => {
  it.each([
    [
      'a list given a string',
      z.object({ targets: z.array(z.string()) }),
      { targets: 'x' },
      'targets: must be a list',
    ],
    ['a missing field', z.object({ name: z.string() }), {}, 'name: is required'],
    ['a string given a number', z.object({ name: z.string() }), { name: 5 }, 'name: must be a string'],
    [
      'a record given a list',
      z.object({ p: z.record(z.string(), z.string()) }),
      { p: [] },
      'p: must be an object',
    ],
    ['min(0)', z.object({ ms: z.number().min(0) }), { ms: -1 }, 'ms: must not be negative'],
    ['positive()', z.object({ n: z.number().positive() }), { n: 0 }, 'n: must be positive'],
    ['min(1)', z.object({ n: z.number().min(1) }), { n: 0 }, 'n: must be at least 1'],
    ['max(16)', z.object({ n: z.number().max(16) }), { n: 17 }, 'n: must be at most 16'],
    ['int()', z.object({ n: z.number().int() }), { n: 1.5 }, 'n: must be a whole number'],
    ['an enum', z.object({ e: z.enum(['a', 'b']) }), { e: 'c' }, 'e: must be one of a, b'],
    ['a literal', z.object({ version: z.literal(1) }), { version: 2 }, 'version: must be 1'],
    ['a non-empty list', z.object({ l: z.array(z.string()).min(1) }), { l: [] }, 'l: must not be empty'],
    [
      "a record key that breaks the key's own rule",
      z.object({ p: z.record(z.string().regex(/^[a-z]+$/, 'must be lowercase letters'), z.number()) }),
      { p: { B: 1 } },
      'p.B: is not a valid key (must be lowercase letters)',
    ],
  ])('%s', (_what, schema, input, rule) => {
    const rules = rulesOf(schema, input);
    expect(rules).toEqual([rule]);
    expect(rules.join('; ')).not.toMatch(ZOD_WORDING);
  });

  it("keeps a schema's own message", () => {
    expect(rulesOf(z.object({ n: z.number().max(3, 'must be from 1 to 3') }), { n: 4 })).toEqual([
      'n: must be from 1 to 3',
    ]);
  });

  // zod's int() also refuses a number past 2^53, under the int's message or as "Too big: expected
  // int to be <=9007199254740991".
  it("states a whole number too big for int() as a bound, not in int()'s message", () => {
    expect(rulesOf(z.object({ seed: z.number().int('must be a whole number') }), { seed: 1e23 })).toEqual([
      'seed: must be at most 9007199254740991',
    ]);
    expect(rulesOf(z.object({ seed: z.number().int('must be a whole number') }), { seed: -1e23 })).toEqual([
      'seed: must be at least -9007199254740991',
    ]);
    expect(rulesOf(z.object({ ms: z.number().int().min(1) }), { ms: 1e20 })).toEqual([
      'ms: must be at most 9007199254740991',
    ]);
  });

  it("states only the schema's own bound when a number past 2^53 breaks it as well", () => {
    const limit = z.object({ timeout: z.number().int().min(1).max(3_600_000, 'must be at most 3600000') });
    expect(rulesOf(limit, { timeout: 1e20 })).toEqual(['timeout: must be at most 3600000']);
    const port = z.object({
      port: z.number().int('must be a port number').min(0).max(65_535, 'must be a port number'),
    });
    expect(rulesOf(port, { port: 1e20 })).toEqual(['port: must be a port number']);
    expect(rulesOf(z.object({ n: z.number().int().min(0, 'must not be negative') }), { n: -1e20 })).toEqual([
      'n: must not be negative',
    ]);
  });
});

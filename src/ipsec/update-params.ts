import { z } from 'zod';
import { ipv4NetworkCidrListSchema, ipv4NetworkCidrSchema } from './cidr.js';
import { jsonObjectField, nonEmptyString, shown, stringField, wireBoolean, wireTrue } from './field-rules.js';
import { ikeConfigSchema } from './ike-config.js';
import { ipsecConfigSchema } from './ipsec-config.js';

/**
 * UpdateIpsecServer's parameters with every rule of the API reference
 * (/work/shared/seed/UpdateIpsecServer.md). The same schema checks a change submitted to the
 * producer API and a request arriving at the simulator, so the two cannot drift apart.
 */

/** The fields a change may set; the rest identify the server or steer the call. */
export const MUTABLE_FIELDS = [
  'LocalSubnet',
  'ClientIpPool',
  'IpsecServerName',
  'EffectImmediately',
  'IkeConfig',
  'IpsecConfig',
  'PskEnabled',
  'Psk',
] as const;
export type MutableField = (typeof MUTABLE_FIELDS)[number];

/** Region ids look like `cn-shanghai`, `ap-southeast-1`, `cn-shanghai-finance-1`. */
const REGION_ID = /^[a-z]{2,}(?:-[a-z0-9]+)+$/;
export const regionIdSchema = nonEmptyString().regex(REGION_ID, {
  error: (issue) => `must be a region id such as cn-shanghai (got ${shown(issue.input)})`,
});

/**
 * 2–128 characters, first a letter or a Chinese character, then letters, digits, Chinese, `-`,
 * `_`. Lengths count code points, not UTF-16 units, so a rare Han character outside the BMP
 * counts once, as a person would count it.
 */
const NAME_FIRST = /^[A-Za-z\p{Script=Han}]/u;
const NAME_CHAR = /^[A-Za-z0-9\p{Script=Han}_-]$/u;
// One test of the whole name first: the character-by-character search only runs to name the culprit.
const NAME_CHARS = /^[A-Za-z0-9\p{Script=Han}_-]*$/u;
/** Code points, as `[...value].length` counts them, without making the array. */
function codePointCount(value: string): number {
  let count = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    // A high surrogate followed by a low one is one code point; a lone surrogate counts alone.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}
export const ipsecServerNameSchema = stringField().superRefine((value, ctx) => {
  const length = codePointCount(value);
  if (length < 2 || length > 128) {
    ctx.addIssue(`must be 2 to 128 characters long (got ${length})`);
  }
  if (length > 0 && !NAME_FIRST.test(value)) {
    ctx.addIssue(`must start with a letter or a Chinese character (got ${shown(value)})`);
  }
  const bad = NAME_CHARS.test(value) ? undefined : [...value].find((char) => !NAME_CHAR.test(char));
  if (bad !== undefined) {
    ctx.addIssue(
      `may contain only letters, digits, Chinese characters, '-' and '_' (got ${JSON.stringify(bad)} in ${shown(value)})`,
    );
  }
});

/**
 * 1–100 printable ASCII characters. The messages never show the key, not even a character of it:
 * validation errors end up in API responses and logs.
 */
const PRINTABLE_ASCII_CHAR = /^[\x20-\x7e]$/;
// One test of the whole text first: the character-by-character search only runs to say where.
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** The index (in characters) of the first character that is not printable ASCII, or -1. */
function firstNonPrintable(value: string): number {
  if (PRINTABLE_ASCII.test(value)) return -1;
  return [...value].findIndex((char) => !PRINTABLE_ASCII_CHAR.test(char));
}

export const pskSchema = stringField().superRefine((value, ctx) => {
  if (value.length < 1 || value.length > 100) {
    ctx.addIssue(`must be 1 to 100 characters long (got ${value.length})`);
  }
  const bad = firstNonPrintable(value);
  if (bad >= 0) {
    ctx.addIssue(`must contain only printable ASCII characters (space to ~); character ${bad + 1} is not`);
  }
});

/**
 * ASCII only, at most 64 characters. Control characters are refused too: a token is echoed in
 * audit records and headers, and nothing legitimate puts a newline in one.
 */
export const clientTokenSchema = stringField().superRefine((value, ctx) => {
  if (value.length < 1 || value.length > 64) {
    ctx.addIssue(`must be 1 to 64 characters long (got ${value.length})`);
  }
  const bad = firstNonPrintable(value);
  if (bad >= 0) {
    ctx.addIssue(
      `must contain only printable ASCII characters; character ${bad + 1} is not (${shown(value)})`,
    );
  }
});

const mutableShape = {
  LocalSubnet: ipv4NetworkCidrListSchema.optional(),
  ClientIpPool: ipv4NetworkCidrSchema.optional(),
  IpsecServerName: ipsecServerNameSchema.optional(),
  EffectImmediately: wireBoolean().optional(),
  IkeConfig: jsonObjectField(ikeConfigSchema).optional(),
  IpsecConfig: jsonObjectField(ipsecConfigSchema).optional(),
  PskEnabled: wireTrue('can only be true (pre-shared key authentication cannot be switched off)').optional(),
  Psk: pskSchema.optional(),
};

const OBJECT_RULE = { error: 'must be an object' } as const;

/** Every parameter of UpdateIpsecServer; what the simulator checks on each incoming request. */
export const updateIpsecServerParamsSchema = z.strictObject(
  {
    IpsecServerId: nonEmptyString(),
    RegionId: regionIdSchema,
    ...mutableShape,
    ClientToken: clientTokenSchema.optional(),
    DryRun: wireBoolean().optional(),
  },
  OBJECT_RULE,
);

export type UpdateIpsecServerParams = z.infer<typeof updateIpsecServerParamsSchema>;
export type UpdateIpsecServerParamsInput = z.input<typeof updateIpsecServerParamsSchema>;

const AT_LEAST_ONE_RULE = `must set at least one of ${MUTABLE_FIELDS.join(', ')}`;

/**
 * Whether the params would change anything at all. An empty IkeConfig/IpsecConfig sets nothing,
 * so `{ IkeConfig: {} }` alone does not count as a change.
 */
export function setsMutableField(params: Partial<Record<MutableField, unknown>>): boolean {
  return MUTABLE_FIELDS.some((field) => {
    const value = params[field];
    if (value === undefined) return false;
    if (typeof value === 'object' && value !== null) {
      return Object.values(value).some((inner) => inner !== undefined);
    }
    return true;
  });
}

/** Only the mutable fields, at least one of them set: the `params` of a submitted change. */
export const mutableParamsSchema = z
  .strictObject(mutableShape, OBJECT_RULE)
  .refine(setsMutableField, { error: AT_LEAST_ONE_RULE });

export type MutableParams = z.infer<typeof mutableParamsSchema>;
export type MutableParamsInput = z.input<typeof mutableParamsSchema>;

/** A whole UpdateIpsecServer request that must also set at least one mutable field. */
export const updateIpsecServerChangeSchema = updateIpsecServerParamsSchema.refine(setsMutableField, {
  error: AT_LEAST_ONE_RULE,
});

/** The mutable part of full params, for diffs and plans. */
export function pickMutable(params: MutableParams): MutableParams {
  const picked: Record<string, unknown> = {};
  for (const field of MUTABLE_FIELDS) {
    if (params[field] !== undefined) picked[field] = params[field];
  }
  return picked as MutableParams;
}

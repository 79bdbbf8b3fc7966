import { z } from 'zod';
import { isPlainObject } from './field-rules.js';
import type { PskFingerprint } from './psk.js';

/**
 * ListIpsecServers' response and the IPsec server model read from it.
 *
 * Responses are validated leniently, unlike requests: the cloud adds fields and algorithms over
 * time, and refusing a server because it reports `sm4` or a new attribute would stop every change
 * on it. So unknown fields are kept, enum-like values are plain strings, numbers and booleans may
 * come as strings, and null means absent. What the pipeline cannot work without (RequestId, the
 * server list, each server's id) is still required.
 *
 * The official SDK (@alicloud/vpc20160428 7.x, ListIpsecServersResponseBodyIpsecServers) models
 * IkeConfig and IpsecConfig as nested objects, not JSON strings as in UpdateIpsecServer's request.
 * Both forms are accepted and normalized to objects.
 */

/*
 * Every server of every read goes through these schemas (two reads per change), so the common case
 * (values already of the right type) meets plain schemas and no transform: coercion from strings
 * sits in a second union branch, and null is dropped once per object, before the fields are read.
 */

const looseString = z.string();

const looseNumber = z.union([
  z.number(),
  z
    .string()
    .regex(/^-?\d+(?:\.\d+)?$/)
    .transform((value) => Number(value)),
]);

const looseBoolean = z.union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')]);

/** The object without its null-valued known fields: null means absent, and absent has one spelling. */
function withoutNullFields(knownFields: readonly string[]) {
  return (value: unknown): unknown => {
    if (!isPlainObject(value)) return value;
    let copy: Record<string, unknown> | undefined;
    for (const field of knownFields) {
      if (value[field] === null) {
        copy ??= { ...value };
        delete copy[field];
      }
    }
    return copy ?? value;
  };
}

/** A loose object whose known fields may each be null (read as absent). */
function lenientObject<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.preprocess(withoutNullFields(Object.keys(shape)), z.looseObject(shape));
}

/** An object, or a JSON string holding one (an unparsable string is an error, not "absent"). */
function objectOrJson<T extends z.ZodType>(schema: T) {
  return z.preprocess((value, ctx): unknown => {
    if (typeof value !== 'string') return value;
    if (value.trim() === '') return {};
    try {
      const parsed: unknown = JSON.parse(value);
      if (isPlainObject(parsed)) return parsed;
    } catch {
      // reported below, with the same message as a non-object
    }
    ctx.addIssue({ code: 'custom', message: 'must be an object or a JSON object string' });
    return z.NEVER;
  }, schema);
}

export const serverIkeConfigSchema = lenientObject({
  IkeVersion: looseString.optional(),
  IkeMode: looseString.optional(),
  IkeEncAlg: looseString.optional(),
  IkeAuthAlg: looseString.optional(),
  IkePfs: looseString.optional(),
  IkeLifetime: looseNumber.optional(),
  LocalId: looseString.optional(),
  RemoteId: looseString.optional(),
});

export const serverIpsecConfigSchema = lenientObject({
  IpsecEncAlg: looseString.optional(),
  IpsecAuthAlg: looseString.optional(),
  IpsecPfs: looseString.optional(),
  IpsecLifetime: looseNumber.optional(),
});

export const ipsecServerSchema = lenientObject({
  IpsecServerId: z.string({ error: 'is required in every server of the response' }).min(1),
  IpsecServerName: looseString.optional(),
  RegionId: looseString.optional(),
  VpnGatewayId: looseString.optional(),
  LocalSubnet: looseString.optional(),
  ClientIpPool: looseString.optional(),
  EffectImmediately: looseBoolean.optional(),
  IkeConfig: objectOrJson(serverIkeConfigSchema).optional(),
  IpsecConfig: objectOrJson(serverIpsecConfigSchema).optional(),
  PskEnabled: looseBoolean.optional(),
  Psk: looseString.optional(),
  InternetIp: looseString.optional(),
  CreationTime: looseString.optional(),
  MaxConnections: looseNumber.optional(),
  OnlineClientCount: looseNumber.optional(),
  MultiFactorAuthEnabled: looseBoolean.optional(),
  IDaaSInstanceId: looseString.optional(),
  ResourceGroupId: looseString.optional(),
});

export const listIpsecServersResponseSchema = lenientObject({
  RequestId: z.string({ error: 'is required in the response' }),
  TotalCount: looseNumber.optional(),
  MaxResults: looseNumber.optional(),
  NextToken: looseString.optional(),
  IpsecServers: z.array(ipsecServerSchema, { error: 'must be a list of servers in the response' }),
});

/** UpdateIpsecServer answers with a RequestId only; anything else is kept. */
export const updateIpsecServerResponseSchema = z.looseObject({
  RequestId: z.string({ error: 'is required in the response' }),
});

export type ServerIkeConfig = z.infer<typeof serverIkeConfigSchema>;
export type ServerIpsecConfig = z.infer<typeof serverIpsecConfigSchema>;
export type IpsecServer = z.infer<typeof ipsecServerSchema>;
export type ListIpsecServersResponse = z.infer<typeof listIpsecServersResponseSchema>;
export type UpdateIpsecServerResponse = z.infer<typeof updateIpsecServerResponseSchema>;

/** The server with its Psk replaced by its label: the form to log, audit or return. */
export function redactServer(server: IpsecServer, fingerprint: PskFingerprint): IpsecServer {
  return server.Psk === undefined ? server : { ...server, Psk: fingerprint(server.Psk) };
}

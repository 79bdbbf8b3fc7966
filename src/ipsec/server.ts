import { z } from 'zod';
import { isPlainObject } from './field-rules.js';
import { pskFingerprint } from './psk.js';

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

/** null → undefined, so that "absent" has one spelling downstream. */
function lenient<T extends z.ZodType>(schema: T) {
  return schema.nullish().transform((value) => value ?? undefined);
}

const looseString = lenient(z.string());

const looseNumber = lenient(
  z.union([z.number(), z.string().regex(/^-?\d+(?:\.\d+)?$/)]).transform((value) => Number(value)),
);

const looseBoolean = lenient(
  z.union([z.boolean(), z.enum(['true', 'false'])]).transform((value) => value === true || value === 'true'),
);

/** An object, or a JSON string holding one (an unparsable string is an error, not "absent"). */
function objectOrJson<T extends z.ZodType>(schema: T) {
  return lenient(
    z
      .union([z.string(), z.custom<z.input<T>>(isPlainObject)])
      .transform((value, ctx): unknown => {
        if (typeof value !== 'string') return value;
        if (value.trim() === '') return {};
        try {
          const parsed: unknown = JSON.parse(value);
          if (isPlainObject(parsed)) return parsed;
        } catch {
          // reported below, with the same message as a non-object
        }
        ctx.addIssue('must be an object or a JSON object string');
        return z.NEVER;
      })
      .pipe(schema),
  );
}

export const serverIkeConfigSchema = z.looseObject({
  IkeVersion: looseString.optional(),
  IkeMode: looseString.optional(),
  IkeEncAlg: looseString.optional(),
  IkeAuthAlg: looseString.optional(),
  IkePfs: looseString.optional(),
  IkeLifetime: looseNumber.optional(),
  LocalId: looseString.optional(),
  RemoteId: looseString.optional(),
});

export const serverIpsecConfigSchema = z.looseObject({
  IpsecEncAlg: looseString.optional(),
  IpsecAuthAlg: looseString.optional(),
  IpsecPfs: looseString.optional(),
  IpsecLifetime: looseNumber.optional(),
});

export const ipsecServerSchema = z.looseObject({
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

export const listIpsecServersResponseSchema = z.looseObject({
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

/** The server with its Psk replaced by pskFingerprint(Psk): the form to log, audit or return. */
export function redactServer(server: IpsecServer): IpsecServer {
  return server.Psk === undefined ? server : { ...server, Psk: pskFingerprint(server.Psk) };
}

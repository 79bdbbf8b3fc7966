import type { z } from 'zod';
import { AliyunApiError } from '../aliyun/errors.js';
import type { CallOptions, RpcCaller } from '../aliyun/types.js';
import { fieldIssues, parseOrThrow } from '../validation.js';
import { DryRunNotHonouredError, IpsecResponseError, IpsecServerNotFoundError } from './errors.js';
import { type ListIpsecServersQueryInput, listIpsecServersQuerySchema } from './list-request.js';
import { withSecretOmitted } from './omit-secret.js';
import {
  type IpsecServer,
  type ListIpsecServersResponse,
  listIpsecServersResponseSchema,
  type UpdateIpsecServerResponse,
  updateIpsecServerResponseSchema,
} from './server.js';
import {
  type UpdateIpsecServerParams,
  type UpdateIpsecServerParamsInput,
  updateIpsecServerParamsSchema,
} from './update-params.js';
import { toListWireParams, toWireParams } from './wire.js';

/**
 * Typed calls over any RpcCaller (the real AliyunClient, or one pointed at the simulator).
 * Parameters are validated before anything is sent (InvalidInputError), responses after they
 * arrive (IpsecResponseError); the cloud's own errors pass through untouched as AliyunApiError /
 * AliyunTransportError so that classifyError sees them as they came.
 */

function parseResponse<T extends z.ZodType>(schema: T, body: unknown, action: string): z.infer<T> {
  const result = schema.safeParse(body);
  if (!result.success) throw new IpsecResponseError(action, fieldIssues(result.error));
  return result.data;
}

/** One UpdateIpsecServer call as given (DryRun included): resolves with the RequestId. */
export async function updateIpsecServer(
  caller: RpcCaller,
  params: UpdateIpsecServerParamsInput,
  options?: CallOptions,
): Promise<UpdateIpsecServerResponse> {
  const valid = parseOrThrow(updateIpsecServerParamsSchema, params, 'UpdateIpsecServer parameters');
  return sendUpdateIpsecServer(caller, valid, options);
}

/**
 * UpdateIpsecServer with params that were parsed at the border already (a change's params, checked
 * when it was submitted): parse at the border, trust inside, so the hot path does not re-validate.
 */
export async function sendUpdateIpsecServer(
  caller: RpcCaller,
  params: UpdateIpsecServerParams,
  options?: CallOptions,
): Promise<UpdateIpsecServerResponse> {
  let body: unknown;
  try {
    body = await caller.call<unknown>('UpdateIpsecServer', toWireParams(params), options);
  } catch (error) {
    // A refusal may quote the key it refused; its message reaches the audit and the plan.
    throw params.Psk !== undefined && error instanceof AliyunApiError
      ? withSecretOmitted(error, params.Psk)
      : error;
  }
  return parseResponse(updateIpsecServerResponseSchema, body, 'UpdateIpsecServer');
}

/**
 * A dry run of UpdateIpsecServer: resolves with the RequestId when the cloud says
 * DryRunOperation (the way it reports "would pass"), rethrows any other error, and throws
 * DryRunNotHonouredError on a plain success, which would mean the change was not a dry run.
 */
export async function dryRunUpdateIpsecServer(
  caller: RpcCaller,
  params: UpdateIpsecServerParamsInput,
  options?: CallOptions,
): Promise<{ RequestId: string | undefined }> {
  const valid = parseOrThrow(updateIpsecServerParamsSchema, params, 'UpdateIpsecServer parameters');
  return sendDryRun(caller, valid, options);
}

/** The dry run of already-parsed params (see sendUpdateIpsecServer). */
export async function sendDryRun(
  caller: RpcCaller,
  params: UpdateIpsecServerParams,
  options?: CallOptions,
): Promise<{ RequestId: string | undefined }> {
  let response: UpdateIpsecServerResponse;
  try {
    response = await sendUpdateIpsecServer(caller, { ...params, DryRun: true }, options);
  } catch (error) {
    if (error instanceof AliyunApiError && error.code === 'DryRunOperation')
      return { RequestId: error.requestId };
    throw error;
  }
  throw new DryRunNotHonouredError(response.RequestId);
}

/**
 * Every page of ListIpsecServers for `query`, following NextToken. Validation happens on the
 * call, not on the first iteration, so a bad query fails where it is written.
 */
export function listIpsecServerPages(
  caller: RpcCaller,
  query: ListIpsecServersQueryInput,
  options?: CallOptions,
): AsyncIterable<ListIpsecServersResponse> {
  const first = parseOrThrow(listIpsecServersQuerySchema, query, 'ListIpsecServers parameters');
  return {
    async *[Symbol.asyncIterator]() {
      const followed = new Set<string>();
      let nextToken = first.NextToken;
      for (;;) {
        const page = { ...first, NextToken: nextToken };
        const body = await caller.call<unknown>('ListIpsecServers', toListWireParams(page), options);
        const response = parseResponse(listIpsecServersResponseSchema, body, 'ListIpsecServers');
        yield response;
        nextToken = response.NextToken;
        if (!nextToken) return;
        // A token seen before would loop forever; better a clear error than a hung worker.
        if (followed.has(nextToken)) {
          throw new IpsecResponseError('ListIpsecServers', [
            { field: 'NextToken', rule: `repeats a token already followed (${nextToken})` },
          ]);
        }
        followed.add(nextToken);
      }
    },
  };
}

/** Every server matching `query`, across all pages. */
export function listIpsecServers(
  caller: RpcCaller,
  query: ListIpsecServersQueryInput,
  options?: CallOptions,
): AsyncIterable<IpsecServer> {
  const pages = listIpsecServerPages(caller, query, options);
  return {
    async *[Symbol.asyncIterator]() {
      for await (const page of pages) yield* page.IpsecServers;
    },
  };
}

/**
 * One server by id. The id filter is not trusted to be exact: the answer is searched for the
 * very id, and its absence is IpsecServerNotFoundError.
 */
export async function getIpsecServer(
  caller: RpcCaller,
  regionId: string,
  ipsecServerId: string,
  options?: CallOptions,
): Promise<IpsecServer> {
  const servers = listIpsecServers(caller, { RegionId: regionId, IpsecServerId: [ipsecServerId] }, options);
  for await (const server of servers) {
    if (server.IpsecServerId === ipsecServerId) return server;
  }
  throw new IpsecServerNotFoundError(regionId, ipsecServerId);
}

/** Business parameters of one RPC call, before wire encoding (values are sent as strings). */
export type RpcParams = Record<string, string | number | boolean | undefined>;

export interface Credentials {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string | undefined;
}

export interface CallOptions {
  /** Cancels the call; the client rejects with AliyunTransportError('TRANSPORT_ABORTED'). */
  signal?: AbortSignal | undefined;
  /** Overall deadline for this call (connect + headers + body); defaults to the client's. */
  timeoutMs?: number | undefined;
}

export type SignatureVersion = 'v3' | 'v1';

/** What both the pipeline and the CLI need of a client; AliyunClient implements it. */
export interface RpcCaller {
  call<T = Record<string, unknown>>(action: string, params: RpcParams, options?: CallOptions): Promise<T>;
}

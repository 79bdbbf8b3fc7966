import { IpsecFleetError } from '../errors.js';

export interface AliyunApiErrorFields {
  code: string;
  message: string;
  httpStatus: number;
  requestId?: string | undefined;
  hostId?: string | undefined;
  recommend?: string | undefined;
  /** How long the cloud asked the caller to wait before calling again (a throttled call's hint). */
  retryAfterMs?: number | undefined;
}

/**
 * The cloud answered with an error. `code` is the cloud's own code (`VpnGateway.Configuring`,
 * `DryRunOperation`, ...), so policy can be written against the documented error table.
 */
export class AliyunApiError extends IpsecFleetError {
  readonly httpStatus: number;
  readonly requestId: string | undefined;
  readonly hostId: string | undefined;
  readonly recommend: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(fields: AliyunApiErrorFields) {
    // The cloud's answer, not a fault in our code: a stack trace would point into undici's parser
    // and tell nothing, yet capturing it was a visible share of the CPU of every dry run (each of
    // which ends in this error). The stack is then just the `name: message` line.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(fields.code, fields.message);
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
    this.httpStatus = fields.httpStatus;
    this.requestId = fields.requestId;
    this.hostId = fields.hostId;
    this.recommend = fields.recommend;
    this.retryAfterMs = fields.retryAfterMs;
  }

  toJSON() {
    return {
      HttpStatus: this.httpStatus,
      Code: this.code,
      Message: this.message,
      RequestId: this.requestId,
      HostId: this.hostId,
      Recommend: this.recommend,
    };
  }
}

export type TransportErrorCode =
  | 'TRANSPORT_TIMEOUT'
  | 'TRANSPORT_RESET'
  | 'TRANSPORT_DNS'
  | 'TRANSPORT_TLS'
  | 'TRANSPORT_REFUSED'
  | 'TRANSPORT_ABORTED'
  | 'TRANSPORT_OTHER';

/** No usable answer came back: the request may or may not have reached the cloud. */
export class AliyunTransportError extends IpsecFleetError {
  declare readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** A credential variable is missing or empty; the message names it. */
export class CredentialsError extends IpsecFleetError {
  constructor(message: string) {
    super('CREDENTIALS_MISSING', message);
  }
}

/** An endpoint override or region id that cannot name a VPC endpoint; the message says which. */
export class EndpointError extends IpsecFleetError {
  constructor(message: string) {
    super('ENDPOINT_INVALID', message);
  }
}

/**
 * A parameter value that cannot travel in a signed request (a lone UTF-16 surrogate has no UTF-8
 * form, so no percent-encoding exists for it). Raised before anything is sent.
 */
export class ParamEncodingError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('PARAM_NOT_ENCODABLE', message, options);
  }
}

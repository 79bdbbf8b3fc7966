import { AliyunTransportError, type TransportErrorCode } from './errors.js';

const CODE_BY_SYSTEM_CODE: Readonly<Record<string, TransportErrorCode>> = {
  UND_ERR_CONNECT_TIMEOUT: 'TRANSPORT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'TRANSPORT_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'TRANSPORT_TIMEOUT',
  ETIMEDOUT: 'TRANSPORT_TIMEOUT',
  // undici reports a peer that closed or reset mid-exchange as a socket error ("other side closed").
  UND_ERR_SOCKET: 'TRANSPORT_RESET',
  ECONNRESET: 'TRANSPORT_RESET',
  EPIPE: 'TRANSPORT_RESET',
  ECONNABORTED: 'TRANSPORT_RESET',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'TRANSPORT_RESET',
  ENOTFOUND: 'TRANSPORT_DNS',
  EAI_AGAIN: 'TRANSPORT_DNS',
  EAI_FAIL: 'TRANSPORT_DNS',
  EAI_NONAME: 'TRANSPORT_DNS',
  ECONNREFUSED: 'TRANSPORT_REFUSED',
  UND_ERR_ABORTED: 'TRANSPORT_ABORTED',
  ABORT_ERR: 'TRANSPORT_ABORTED',
};

const TLS_SYSTEM_CODE =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH)/;

function systemCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The node/undici error codes along the cause chain, and inside AggregateErrors (happy-eyeballs connects). */
function systemCodes(error: unknown): string[] {
  const codes: string[] = [];
  const pending: unknown[] = [error];
  for (let depth = 0; pending.length > 0 && depth < 16; depth++) {
    const current = pending.shift();
    const code = systemCodeOf(current);
    if (code) codes.push(code);
    if (current instanceof AggregateError) pending.push(...current.errors);
    if (current instanceof Error && current.cause !== undefined) pending.push(current.cause);
  }
  return codes;
}

/**
 * Maps a low-level failure to our stable code. The most specific code wins: undici wraps a TLS or
 * reset error of the socket into its own socket error, and the wrapped code tells more.
 */
export function classifyTransportFailure(error: unknown): TransportErrorCode {
  let fallback: TransportErrorCode = 'TRANSPORT_OTHER';
  for (const code of systemCodes(error)) {
    if (TLS_SYSTEM_CODE.test(code)) return 'TRANSPORT_TLS';
    const mapped = CODE_BY_SYSTEM_CODE[code];
    if (mapped && mapped !== 'TRANSPORT_RESET' && mapped !== 'TRANSPORT_ABORTED') return mapped;
    if (mapped && fallback === 'TRANSPORT_OTHER') fallback = mapped;
  }
  return fallback;
}

export function toTransportError(error: unknown, target: string): AliyunTransportError {
  if (error instanceof AliyunTransportError) return error;
  const code = classifyTransportFailure(error);
  const detail = error instanceof Error ? error.message : String(error);
  return new AliyunTransportError(code, `${target}: ${describe(code)} (${detail})`, { cause: error });
}

function describe(code: TransportErrorCode): string {
  switch (code) {
    case 'TRANSPORT_TIMEOUT':
      return 'timed out';
    case 'TRANSPORT_RESET':
      return 'connection reset or closed by the peer';
    case 'TRANSPORT_DNS':
      return 'host name did not resolve';
    case 'TRANSPORT_TLS':
      return 'TLS handshake or certificate failed';
    case 'TRANSPORT_REFUSED':
      return 'connection refused';
    case 'TRANSPORT_ABORTED':
      return 'aborted by the caller';
    case 'TRANSPORT_OTHER':
      return 'transport failed';
  }
}

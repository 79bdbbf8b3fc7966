import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Raw request target, e.g. `/?Action=...`. */
  url: string;
  pathname: string;
  /** Decoded query parameters (last value wins). */
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: string;
  /** Client-side port of the TCP connection, to tell connections apart. */
  remotePort: number;
}

export type RequestHandler = (
  request: RecordedRequest,
  response: ServerResponse,
  raw: IncomingMessage,
) => void | Promise<void>;

export interface TestHttpServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  port: number;
  requests: RecordedRequest[];
  /** TCP connections accepted so far. */
  connectionCount(): number;
  setHandler(handler: RequestHandler): void;
  close(): Promise<void>;
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json;charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

export const answerRequestId: RequestHandler = (_request, response) => {
  sendJson(response, 200, { RequestId: 'req-ok' });
};

export function decodeQuery(search: URLSearchParams): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of search) params[name] = value;
  return params;
}

/** A handler that passes the request on to `origin` as it came, and its answer back as it comes. */
export function forwardTo(origin: string): RequestHandler {
  const upstream = new URL(origin);
  return (recorded, response, raw) => {
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: raw.method,
        path: raw.url,
        headers: raw.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forward.on('error', () => response.destroy());
    forward.end(recorded.body);
  };
}

/** A real node:http server on 127.0.0.1 and a free port that records every request it gets. */
export async function startHttpServer(
  initialHandler: RequestHandler = answerRequestId,
): Promise<TestHttpServer> {
  let handler = initialHandler;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((raw, response) => {
    const chunks: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => chunks.push(chunk));
    raw.on('end', () => {
      const url = new URL(raw.url ?? '/', 'http://127.0.0.1');
      const recorded: RecordedRequest = {
        method: raw.method ?? '',
        url: raw.url ?? '',
        pathname: url.pathname,
        query: decodeQuery(url.searchParams),
        headers: raw.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remotePort: raw.socket.remotePort ?? 0,
      };
      requests.push(recorded);
      void handler(recorded, response, raw);
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    connectionCount: () => connections,
    setHandler: (next) => {
      handler = next;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on: bound once by us, then released. */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

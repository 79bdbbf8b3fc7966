import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** `redis://127.0.0.1:<port>` when the target is a Redis URL's host and port. */
  url: string;
  /**
   * A partition: both directions stop, and nothing is closed, so the client's commands go out and
   * are never answered (what a dropped route or a dead switch looks like, unlike a refused port).
   */
  freeze(): void;
  /** Ends the partition: what was held back flows again, and new connections pass. */
  heal(): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of a Redis, for tests that cut one client off from it (real sockets). */
export async function startTcpProxy(redisUrl: string): Promise<TcpProxy> {
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  const pairs: [Socket, Socket][] = [];
  let frozen = false;
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    pairs.push([client, upstream]);
    if (frozen) client.pause();
    else connect(client, upstream);
  });
  const connect = (client: Socket, upstream: Socket) => {
    client.pipe(upstream);
    upstream.pipe(client);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}${target.pathname}`,
    freeze() {
      frozen = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    heal() {
      frozen = false;
      for (const [client, upstream] of pairs) {
        if (client.destroyed || upstream.destroyed) continue;
        connect(client, upstream);
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * TCP hops in front of Redis for tests of what a command's journey can do to the system: an
 * answer lost with its connection, a command slow to arrive.
 */
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server,
  type Socket,
} from 'node:net';

export interface RedisCutter {
  url: string;
  /** Connections cut so far. */
  cuts(): number;
  close(): Promise<void>;
}

/**
 * A TCP hop in front of Redis. The first time a client sends bytes containing `needle`, they are
 * passed on, and 100 ms later (Redis has run the command) that client's connection is cut
 * without passing back what Redis answered meanwhile: a reply lost with the connection.
 */
export async function startRedisCutter(target: URL, needle: string): Promise<RedisCutter> {
  let armed = true;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let cut = false;
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      const text = tail + chunk.toString('latin1');
      tail = text.slice(-needle.length);
      if (armed && text.includes(needle)) {
        armed = false;
        cut = true;
        setTimeout(() => {
          cuts++;
          client.destroy();
          upstream.destroy();
        }, 100);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) client.write(chunk);
    });
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  return { ...(await listen(server, sockets)), cuts: () => cuts };
}

/**
 * A TCP hop in front of Redis that passes everything on, except that the first bytes a client
 * sends containing `needle`, and all that client sends after them, wait for release(): a command
 * slow to arrive, while the rest of the system goes on. With `{ armed: false }` it passes
 * everything on until arm(): a client's start-up may send the needle too.
 */
export async function startCommandHold(redisUrl: string, needle: string, options: { armed?: boolean } = {}) {
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  const held: Array<() => void> = [];
  let armed = options.armed ?? true;
  let released = false;
  const server = createNetServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    let holding = false;
    client.on('data', (chunk: Buffer) => {
      if (armed && chunk.toString('latin1').includes(needle)) {
        armed = false;
        holding = !released;
      }
      if (holding && !released) held.push(() => upstream.write(chunk));
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  return {
    ...(await listen(server, sockets)),
    holding: () => held.length > 0,
    arm() {
      armed = true;
    },
    release() {
      released = true;
      for (const send of held.splice(0)) send();
    },
  };
}

/** Starts a hop on a free port: its URL, and a close that drops the connections it carries. */
async function listen(
  server: Server,
  sockets: Set<Socket>,
): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

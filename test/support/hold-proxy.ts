/**
 * An HTTP hop in front of a real server (the simulator) that forwards every call at once but holds
 * back the answer of the first call matching `hold` until release(), or for `holdMs` (a hang
 * guard), as a stalled load balancer would: the server has acted, the caller has not heard.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HoldProxy {
  origin: string;
  /** Calls matched (at most 1): the one whose answer is, or was, held back. */
  held(): number;
  /**
   * Lets the held answer go: at once if it has arrived, else as soon as it does (a caller no longer
   * there gets nothing).
   */
  release(): void;
  close(): Promise<void>;
}

export async function startHoldProxy(
  target: string,
  hold: (req: IncomingMessage) => boolean,
  holdMs: number,
): Promise<HoldProxy> {
  const upstream = new URL(target);
  let held = 0;
  let released = false;
  let sendHeld: (() => void) | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const holdThis = held === 0 && hold(req);
    if (holdThis) held++;
    res.on('error', () => undefined);
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const send = () => {
            if (res.destroyed) return;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(chunks));
          };
          if (!holdThis || released) return send();
          const timer = setTimeout(() => sendHeld?.(), holdMs);
          timers.add(timer);
          sendHeld = () => {
            sendHeld = undefined;
            clearTimeout(timer);
            timers.delete(timer);
            send();
          };
        });
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    held: () => held,
    release: () => {
      released = true;
      sendHeld?.();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/**
 * A TCP proxy in front of the test database, for tests that must see or change what goes over
 * a real connection. Each connection is paired with one to the server, and `pipe` decides what
 * each side's bytes become; when either side closes or fails, both are closed.
 *
 *   client ──► proxy ──► PostgreSQL      pipe(client, upstream): the test's data handlers
 *          ◄──       ◄──
 */
import net from 'node:net';

export interface TcpProxy {
  /** The database URL with the proxy's host and port. */
  url: string;
  port: number;
  /** The listening server: a test may close it and listen on `port` again (refused connections). */
  server: net.Server;
  close(): Promise<void>;
}

export async function startTcpProxy(
  databaseUrl: string,
  pipe: (client: net.Socket, upstream: net.Socket) => void,
): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', end);
      socket.on('error', end);
    }
    pipe(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    port: address.port,
    server,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

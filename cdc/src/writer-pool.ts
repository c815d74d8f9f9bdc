/**
 * The worker's own connection pool for writing batches. Its sockets disable Nagle's algorithm:
 * COPY sends its rows and its end as separate writes with no reply in between, and with Nagle
 * the second write waits for the server's delayed ACK (about 40 ms) on every batch.
 */
import net from 'node:net';
import { reconnectDelaySeconds } from '@sync/db/reconnect-delay';
import postgres from 'postgres';

interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

export function createWriterPool(databaseUrl: string, max: number): postgres.Sql {
  const options = {
    max,
    onnotice: () => {},
    connection: { application_name: 'sync-cdc-writer' },
    backoff: reconnectDelaySeconds,
    // postgres.js accepts a socket factory (`socket`), though its type declarations omit it.
    socket: connectWithoutDelay,
  };
  return postgres(databaseUrl, options as postgres.Options<Record<string, never>>);
}

/**
 * Connects to the first host of the URL (or its unix socket); multi-host URLs are not supported.
 * The socket is returned before it connects, like postgres.js's own: writes queue until then and
 * a refused connection surfaces as the socket's 'error', which postgres.js retries as usual.
 */
function connectWithoutDelay(target: SocketTarget): net.Socket {
  const socket = target.path
    ? net.connect(target.path)
    : net.connect({ host: target.host[0] ?? 'localhost', port: target.port[0] ?? 5432 });
  socket.setNoDelay(true);
  return socket;
}

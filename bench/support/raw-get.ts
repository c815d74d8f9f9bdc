/**
 * A GET on its own TCP connection that only finds where the response ends (its Content-Length)
 * and reads nothing else: a load generator whose per-response cost is a few microseconds, so a
 * fan-out of 1,000 responses measures the server, not an HTTP client parsing them. It does not
 * ask the server to close the connection after the answer (a live client keeps it for its next
 * request, so closing is no part of a real fan-out); it drops the connection itself once the
 * response is read.
 */
import { connect } from 'node:net';

export function rawGet(url: string, headers: Record<string, string>): Promise<void> {
  const { hostname, port, pathname, search, host } = new URL(url);
  const lines = Object.entries({ host, ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  const request = `GET ${pathname}${search} HTTP/1.1\r\n${lines.join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(request));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('error', reject);
    socket.on('data', (chunk: string) => {
      received += chunk;
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(received.slice(0, headEnd))?.[1]);
      if (Number.isNaN(length)) reject(new Error(`no Content-Length in ${received.slice(0, headEnd)}`));
      else if (received.length < headEnd + 4 + length) return;
      else resolve();
      socket.destroy();
    });
  });
}

/**
 * A response written straight to Node's ServerResponse, for answers that many waiting requests
 * share: after one change, every long-poll waiting at an offset is answered with the same bytes.
 * Hono's way costs about 0.2 ms of CPU per response (a web Response and its Headers, which the
 * middleware edit and the Node adapter converts back into Node's headers), 1,000 times after one
 * change. Here the shared body is written once per request with one `writeHead` and one `end`:
 *
 *   sendStraight(c, status, headers, body)
 *     ├─ no Node response (`app.request`) ─► an ordinary Hono response with the same headers
 *     ├─ the client is gone ───────────────► nothing is written
 *     └─ writeHead(status, headers set on c so far + `headers` + the middleware's
 *        `addedHeaders`, sorted as the adapter sorts them, then Content-Length); end(body)
 *   ─► RESPONSE_ALREADY_SENT: the adapter writes nothing more, and middleware that edit finished
 *      responses leave it alone (`isSentStraight`)
 *
 * A client (or a cache in front) cannot tell the two apart: same status, headers and bytes.
 */
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { AddedHeaders, AppEnv } from './app-env.ts';

/** True for the response of a request `sendStraight` answered: its headers are not the sent ones. */
export function isSentStraight(res: Response): boolean {
  return res === RESPONSE_ALREADY_SENT;
}

/** Adds the middleware's headers to a finished Hono response (the same ones `sendStraight` writes). */
export function applyAddedHeaders(headers: Headers, added: AddedHeaders): void {
  for (const [name, value] of added.set) headers.set(name, value);
  for (const [name, value] of added.append) headers.append(name, value);
}

export function sendStraight(
  c: Context<AppEnv>,
  status: 200,
  headers: Record<string, string>,
  body: Buffer,
): Response {
  const outgoing = c.env?.outgoing;
  if (!outgoing) return c.body(new Uint8Array(body), status, headers);
  if (outgoing.destroyed || outgoing.headersSent) return RESPONSE_ALREADY_SENT;
  const merged = new Map<string, string>();
  // what was set with c.header (the request id, the route's cache headers), lowercase as in
  // Headers; read through a throwaway response, since reading `c.res` would make one that Hono
  // then merges with RESPONSE_ALREADY_SENT into a response the adapter would try to write again
  for (const [name, value] of c.newResponse(null).headers) merged.set(name, value);
  for (const [name, value] of Object.entries(headers)) merged.set(name.toLowerCase(), value);
  const added = c.var.addedHeaders;
  for (const [name, value] of added?.set ?? []) merged.set(name, value);
  for (const [name, value] of added?.append ?? []) {
    const current = merged.get(name);
    merged.set(name, current === undefined ? value : `${current}, ${value}`);
  }
  // the adapter writes a Headers object's entries in its (sorted) order, then Content-Length
  const written: Record<string, string | number> = {};
  for (const name of [...merged.keys()].sort()) written[name] = merged.get(name) ?? '';
  written['Content-Length'] = body.byteLength;
  outgoing.writeHead(status, written);
  outgoing.end(body);
  return RESPONSE_ALREADY_SENT;
}

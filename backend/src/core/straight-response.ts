/**
 * A response written straight to Node's ServerResponse, for answers that many waiting requests
 * share: after one change, every long-poll waiting at an offset is answered with the same bytes.
 * Hono's way costs about 0.2 ms of CPU per response (a web Response and its Headers, which the
 * middleware edit and the Node adapter converts back into Node's headers), 1,000 times after one
 * change. Here the answer is prepared once for every request that shares it, and each request
 * costs one `writeHead` with a flat header list and one `end`:
 *
 *   prepareStraightAnswer(status, headers, addedHeaders, body)   once per shared answer
 *     └─ headers + the middleware's `addedHeaders`, lowercase, sorted as the adapter sorts them
 *   sendStraight(c, answer)                                      once per request
 *     ├─ no Node response (`app.request`) ─► an ordinary Hono response with the same headers
 *     ├─ the client is gone ───────────────► nothing is written
 *     └─ writeHead(status, the prepared list with this request's x-request-id in its sorted
 *        place, then Content-Length); end(body)
 *   ─► RESPONSE_ALREADY_SENT: the adapter writes nothing more, and middleware that edit finished
 *      responses leave it alone (`isSentStraight`)
 *
 * The headers are the caller's whole say: whatever else was set with `c.header` is not sent,
 * except the request id. A client (or a cache in front) cannot tell the two apart: same status,
 * headers in the same order, and bytes.
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

/** The header requestId() sets on every response, lowercase as Headers keeps it. */
const REQUEST_ID = 'x-request-id';

/** An answer shared by many requests, prepared once. */
export interface StraightAnswer {
  status: 200;
  /** The caller's headers, as Hono would send them before the middleware add theirs. */
  headers: Record<string, string>;
  /** name, value, name, value…: with the middleware's, lowercase, sorted; no request id or length. */
  written: string[];
  /** Where this request's x-request-id goes in `written`, to keep it sorted. */
  requestIdAt: number;
  body: Buffer;
}

export function prepareStraightAnswer(
  status: 200,
  headers: Record<string, string>,
  added: AddedHeaders | undefined,
  body: Buffer,
): StraightAnswer {
  const merged = new Map<string, string>();
  for (const [name, value] of Object.entries(headers)) merged.set(name.toLowerCase(), value);
  for (const [name, value] of added?.set ?? []) merged.set(name, value);
  for (const [name, value] of added?.append ?? []) {
    const current = merged.get(name);
    merged.set(name, current === undefined ? value : `${current}, ${value}`);
  }
  merged.delete(REQUEST_ID);
  const names = [...merged.keys()].sort();
  const after = names.findIndex((name) => name > REQUEST_ID);
  return {
    status,
    headers,
    written: names.flatMap((name) => [name, merged.get(name) ?? '']),
    requestIdAt: 2 * (after < 0 ? names.length : after),
    body,
  };
}

export function sendStraight(c: Context<AppEnv>, answer: StraightAnswer): Response {
  const outgoing = c.env?.outgoing;
  if (!outgoing) return c.body(new Uint8Array(answer.body), answer.status, answer.headers);
  if (outgoing.destroyed || outgoing.headersSent) return RESPONSE_ALREADY_SENT;
  const { written, requestIdAt, body } = answer;
  const requestId = c.get('requestId');
  // the adapter writes a Headers object's entries in its (sorted) order, then Content-Length
  const headers = requestId ? written.toSpliced(requestIdAt, 0, REQUEST_ID, requestId) : written.slice();
  headers.push('Content-Length', String(body.byteLength));
  outgoing.writeHead(answer.status, headers);
  outgoing.end(body);
  return RESPONSE_ALREADY_SENT;
}

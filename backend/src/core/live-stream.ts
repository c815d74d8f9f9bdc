/**
 * One policy for every long-lived response, declared on its route after the member guard
 * (`middleware: [requireMember, liveStream(kindOf)]`):
 *
 *   request ─► kindOf(c) ─ null ──────────────────────────────────────────► handler as usual
 *                 ├─ 'sse' ─► at most maxStreamsPerUser open, else 429 + Retry-After ─┐
 *                 └─ 'poll' ──────────────────────────────────────────────────────────┴► hold the
 *                                                            access (live-access.ts) ─► handler
 *   revoked while a long-poll waits: `liveSignal(c)` aborts, the handler answers at once
 *   revoked while an SSE body streams: the body ends, the handler sees its stream aborted
 *   body done or client gone ─► release
 *
 * Either way the client's next request meets the guards again: 401 or 404.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';
import { AppError } from './errors.ts';
import { currentOrganization, currentUser } from './guards.ts';
import type { LiveAccess } from './live-access.ts';

/** How long a client refused by the stream cap should wait before trying again. */
const STREAM_CAP_RETRY_AFTER_S = 5;

export type LiveKind = LiveAccess['kind'] | null;

export function liveStream(kindOf: (c: Context<AppEnv>) => LiveKind): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const kind = kindOf(c);
    if (!kind) return next();
    const { liveAccess, config } = c.get('deps');
    const userId = currentUser(c).id;
    if (kind === 'sse' && liveAccess.countHeld(userId, 'sse') >= config.maxStreamsPerUser) {
      throw AppError.rateLimited(
        `At most ${config.maxStreamsPerUser} open streams per user`,
        STREAM_CAP_RETRY_AFTER_S,
      );
    }
    const hold = liveAccess.hold({
      sessionTokenHash: c.get('sessionTokenHash') ?? '',
      userId,
      organizationId: currentOrganization(c).id,
      kind,
    });
    c.set('liveSignal', AbortSignal.any([c.req.raw.signal, hold.signal]));
    try {
      await next();
    } catch (err) {
      hold.release();
      throw err;
    }
    // a long-poll has answered (early, if revoked); a stream's body is still to come. Only a
    // stream's body is touched: reading `body` turns the adapter's string response into a stream
    const body = kind === 'sse' ? c.res.body : null;
    if (!body) {
      hold.release();
      return;
    }
    c.res = new Response(endWhenAborted(body, hold.signal, hold.release), c.res);
  };
}

/** The signal a live handler waits on: the client left, or its access was revoked. */
export function liveSignal(c: Context<AppEnv>): AbortSignal {
  return c.get('liveSignal') ?? c.req.raw.signal;
}

/**
 * `body`, closed cleanly (not errored) when `signal` aborts; the source is then cancelled, which
 * is how a Hono stream learns that its client is gone. `onEnd` runs once, however it ends.
 */
function endWhenAborted(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = () => {
    if (ended) return false;
    ended = true;
    signal.removeEventListener('abort', cut);
    onEnd();
    return true;
  };
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const cut = () => {
    if (!end()) return;
    controller?.close();
    reader.cancel().catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (signal.aborted) cut();
      else signal.addEventListener('abort', cut, { once: true });
    },
    async pull(c) {
      try {
        const { done, value } = await reader.read();
        if (ended) return;
        if (done) {
          end();
          c.close();
        } else c.enqueue(value);
      } catch (err) {
        if (end()) c.error(err);
      }
    },
    async cancel(reason) {
      end();
      await reader.cancel(reason);
    },
  });
}

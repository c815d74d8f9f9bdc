/**
 * The Server-Sent Events loop of every stream that follows an organization's activity log (the
 * activity feed and the shape stream); the handler's body says what to read and send:
 *
 *   open ─► body(live) ── live.send(…) ──► live.idle(ms) ─┬─ NOTIFY for the organization ─┐
 *                 ▲                                        ├─ ms passed ───────────────────┤
 *                 └────────────────────────────────────────┴───────────────────────────────┘
 *                                                          └─ client gone or access revoked:
 *                                                             live.open turns false, body ends
 *   idle with nothing sent for keepAlive.everyMs: one `: <comment>` line first
 *   body ended, however: the waiter is closed and the stream gauge goes down
 */
import type { Context } from 'hono';
import { type SSEMessage, streamSSE } from 'hono/streaming';
import type { AppEnv } from './app-env.ts';

export interface LiveSse {
  /** False once the client is gone or its access was revoked (live-stream.ts ends the body). */
  readonly open: boolean;
  /**
   * When the last notification before the stream subscribed arrived: the first read may share
   * only a read started after it (activity-notifier.ts, `lastNotifiedAt`).
   */
  readonly notifiedBeforeOpen: number;
  send(message: SSEMessage): Promise<void>;
  /**
   * The keep-alive comment when it is due, then wait for the organization's next batch or `ms`;
   * after a batch, the time its notification arrived.
   */
  idle(ms: number): Promise<number | undefined>;
}

export interface LiveSseOptions {
  organizationId: string;
  /** Label of the `stream_clients` gauge. */
  kind: 'activities' | 'shape-sse';
  keepAlive: { everyMs: number; comment: string };
}

export function streamLiveSse(
  c: Context<AppEnv>,
  options: LiveSseOptions,
  body: (live: LiveSse) => Promise<void>,
): Response {
  const deps = c.get('deps');
  deps.metrics.streamClients.inc({ kind: options.kind });
  c.header('X-Accel-Buffering', 'no');

  return streamSSE(c, async (stream) => {
    const waiter = deps.notifier.waiter(options.organizationId);
    const aborted = new AbortController();
    stream.onAbort(() => aborted.abort());
    let lastSentAt = Date.now();
    const live: LiveSse = {
      notifiedBeforeOpen: waiter.lastNotifiedAt,
      get open() {
        return !aborted.signal.aborted;
      },
      async send(message) {
        await stream.writeSSE(message);
        lastSentAt = Date.now();
      },
      async idle(ms) {
        if (Date.now() - lastSentAt >= options.keepAlive.everyMs) {
          await stream.write(`: ${options.keepAlive.comment}\n\n`);
          lastSentAt = Date.now();
        }
        return waiter.wait(ms, aborted.signal);
      },
    };
    try {
      await body(live);
    } finally {
      waiter.close();
      deps.metrics.streamClients.dec({ kind: options.kind });
    }
  });
}

/**
 * The live activity feed over Server-Sent Events.
 *
 *   connect ─► `connected {offset}` + `counts` ─► wait ──(NOTIFY for this org | 2 s re-check)──┐
 *                                                  ▲                                             │
 *                                                  └── `activity` events (id: cursor), then ◄────┘
 *                                                      `counts` at most twice a second
 *   every 15 s without traffic: `: heartbeat`      client gone: unsubscribe, close
 *
 * A reconnecting client sends `Last-Event-ID` (or `?after=`) and resumes right after it, so it
 * neither misses nor repeats an activity: the cursor is the activity's deterministic key.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../core/app-env.ts';
import { listActivities, readCounts } from './activity-operations.ts';

const SSE_EVENT = { connected: 'connected', activity: 'activity', counts: 'counts' } as const;

const HEARTBEAT_MS = 15_000;
const RECHECK_MS = 2_000;
const COUNTS_MIN_INTERVAL_MS = 500;
const PAGE = 500;

export function streamActivities(c: Context<AppEnv>, organizationId: string, after: string | null) {
  const { deps } = c.var;
  deps.metrics.streamClients.inc({ kind: 'activities' });
  c.header('X-Accel-Buffering', 'no');
  c.header('Cache-Control', 'no-cache, no-transform');

  return streamSSE(c, async (stream) => {
    const waiter = deps.notifier.waiter(organizationId);
    const aborted = new AbortController();
    stream.onAbort(() => aborted.abort());
    try {
      const initial = await readCounts(deps, organizationId);
      let cursor = after ?? initial.offset ?? '0_0';
      await stream.writeSSE({ event: SSE_EVENT.connected, data: JSON.stringify({ offset: cursor }) });
      await stream.writeSSE({ event: SSE_EVENT.counts, data: JSON.stringify(initial) });
      let countsSentAt = Date.now();
      let countsDue = false;
      let lastWrite = Date.now();

      while (!aborted.signal.aborted) {
        const page = await listActivities(deps.sql, organizationId, { after: cursor, limit: PAGE });
        for (const activity of page.items) {
          await stream.writeSSE({
            event: SSE_EVENT.activity,
            id: activity.id,
            data: JSON.stringify(activity),
          });
          cursor = activity.id;
          countsDue = true;
          lastWrite = Date.now();
        }
        if (page.nextCursor) continue;
        if (countsDue && Date.now() - countsSentAt >= COUNTS_MIN_INTERVAL_MS) {
          await stream.writeSSE({
            event: SSE_EVENT.counts,
            data: JSON.stringify(await readCounts(deps, organizationId)),
          });
          countsSentAt = Date.now();
          countsDue = false;
          lastWrite = Date.now();
        }
        if (Date.now() - lastWrite >= HEARTBEAT_MS) {
          await stream.write(': heartbeat\n\n');
          lastWrite = Date.now();
        }
        const waitMs = countsDue ? COUNTS_MIN_INTERVAL_MS - (Date.now() - countsSentAt) : RECHECK_MS;
        await waiter.wait(Math.max(10, waitMs), aborted.signal);
      }
    } finally {
      waiter.close();
      deps.metrics.streamClients.dec({ kind: 'activities' });
    }
  });
}

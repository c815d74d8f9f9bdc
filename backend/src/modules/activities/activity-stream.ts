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
import type { AppEnv } from '../../core/app-env.ts';
import { streamLiveSse } from '../../core/live-sse.ts';
import { listActivities, readCounts } from './activity-operations.ts';

const SSE_EVENT = { connected: 'connected', activity: 'activity', counts: 'counts' } as const;

const HEARTBEAT_MS = 15_000;
const RECHECK_MS = 2_000;
const COUNTS_MIN_INTERVAL_MS = 500;
const PAGE = 500;

export function streamActivities(c: Context<AppEnv>, organizationId: string, after: string | null) {
  const deps = c.get('deps');
  c.header('Cache-Control', 'no-cache, no-transform');
  const keepAlive = { everyMs: HEARTBEAT_MS, comment: 'heartbeat' };

  return streamLiveSse(c, { organizationId, kind: 'activities', keepAlive }, async (live) => {
    const initial = await readCounts(deps, organizationId);
    let cursor = after ?? initial.offset ?? '0_0';
    await live.send({ event: SSE_EVENT.connected, data: JSON.stringify({ offset: cursor }) });
    await live.send({ event: SSE_EVENT.counts, data: JSON.stringify(initial) });
    let countsSentAt = Date.now();
    let countsDue = false;

    while (live.open) {
      const page = await listActivities(deps.sql, organizationId, { after: cursor, limit: PAGE });
      for (const activity of page.items) {
        await live.send({ event: SSE_EVENT.activity, id: activity.id, data: JSON.stringify(activity) });
        cursor = activity.id;
        countsDue = true;
      }
      if (page.nextCursor) continue;
      if (countsDue && Date.now() - countsSentAt >= COUNTS_MIN_INTERVAL_MS) {
        await live.send({
          event: SSE_EVENT.counts,
          data: JSON.stringify(await readCounts(deps, organizationId)),
        });
        countsSentAt = Date.now();
        countsDue = false;
      }
      const waitMs = countsDue ? COUNTS_MIN_INTERVAL_MS - (Date.now() - countsSentAt) : RECHECK_MS;
      await live.idle(Math.max(10, waitMs));
    }
  });
}

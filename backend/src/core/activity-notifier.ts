/**
 * One LISTEN per API process on the CDC worker's NOTIFY channel, fanned out in memory to the
 * streams (activity SSE, live shapes) of the organizations a batch touched. postgres.js
 * re-establishes the LISTEN after a lost connection; streams also re-check on a slow timer, so
 * a missed notification delays a change but never loses it.
 *
 *   NOTIFY {organizationIds} ─► each waiter of those organizations wakes
 *                            └► their "last notified" times move (notifiedSince)
 *   NOTIFY without a list ───► every waiter wakes, every organization counts as notified
 *   LISTEN (re)established ──► the same: what was sent while nobody listened is unknown
 */
import { NOTIFY_CHANNEL } from '@sync/db/constants';
import { parseActivityNotification } from '@sync/db/notification';
import type { Logger } from 'pino';
import type { Sql } from '../db/client.ts';

/** Called with the time (performance.now()) the batch's notification arrived. */
type Wake = (notifiedAt: number) => void;

/**
 * Subscribed from creation, so a batch committed between a stream's read and its wait is not
 * missed: `wait` then returns at once.
 */
export interface ActivityWaiter {
  /**
   * Resolves at the next batch for the organization (or one since the last wait), a timeout or an
   * abort; after a batch, with the time its notification arrived (a read started later sees it).
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<number | undefined>;
  /**
   * When the last notification before this waiter subscribed arrived (of any organization;
   * -Infinity if none): a read started later sees every batch committed before the waiter
   * subscribed, and later batches wake it. A read started earlier may have missed a batch whose
   * notification the waiter never sees, so its first read must not share such a read.
   */
  readonly lastNotifiedAt: number;
  close(): void;
}

export interface ActivityNotifier {
  waiter(organizationId: string): ActivityWaiter;
  /**
   * False only when no batch of the organization can have been notified after `since` (a
   * performance.now() time) and the LISTEN has stood all that time: a read of its log started
   * at `since` is then still its latest state, up to batches whose notification is on its way
   * (a waiter subscribed now gets those).
   */
  notifiedSince(organizationId: string, since: number): boolean;
  close(): Promise<void>;
}

/** Organizations whose last notification time is kept; older ones count as notified at that time. */
const REMEMBERED_ORGANIZATIONS = 10_000;

export function createActivityNotifier(sql: Sql, logger: Logger): ActivityNotifier {
  const byOrganization = new Map<string, Set<Wake>>();
  let listening: Promise<{ unlisten(): Promise<void> }> | undefined;
  let lastNotifiedAt = Number.NEGATIVE_INFINITY;
  // the last notification of each organization, oldest first; one of every organization (a
  // notification without a list, or the LISTEN established again); and the newest of those forgotten
  const notifiedAtByOrganization = new Map<string, number>();
  let everyOrganizationNotifiedAt = Number.NEGATIVE_INFINITY;
  let forgottenThrough = Number.NEGATIVE_INFINITY;

  const remember = (organizationId: string, at: number) => {
    notifiedAtByOrganization.delete(organizationId);
    notifiedAtByOrganization.set(organizationId, at);
    if (notifiedAtByOrganization.size <= REMEMBERED_ORGANIZATIONS) return;
    const [oldest] = notifiedAtByOrganization;
    if (!oldest) return;
    notifiedAtByOrganization.delete(oldest[0]);
    forgottenThrough = oldest[1];
  };

  const wakeEvery = (notifiedAt: number) => {
    everyOrganizationNotifiedAt = notifiedAt;
    for (const wakes of byOrganization.values()) for (const wake of wakes) wake(notifiedAt);
  };

  const deliver = (payload: string) => {
    const notification = parseActivityNotification(payload);
    if (!notification) return;
    const notifiedAt = performance.now();
    lastNotifiedAt = notifiedAt;
    if (!notification.organizationIds) return wakeEvery(notifiedAt);
    for (const organizationId of notification.organizationIds) {
      remember(organizationId, notifiedAt);
      for (const wake of byOrganization.get(organizationId) ?? []) wake(notifiedAt);
    }
  };

  // while nobody listened, batches may have been notified unheard: as if every organization was
  const listened = () => {
    const at = performance.now();
    lastNotifiedAt = at;
    wakeEvery(at);
  };

  const subscribe = (organizationId: string, wake: Wake) => {
    listening ??= sql.listen(NOTIFY_CHANNEL, deliver, listened).catch((err) => {
      logger.error({ err }, 'LISTEN failed; streams fall back to polling');
      listening = undefined;
      everyOrganizationNotifiedAt = performance.now();
      return { unlisten: async () => {} };
    });
    const wakes = byOrganization.get(organizationId) ?? new Set<Wake>();
    byOrganization.set(organizationId, wakes);
    wakes.add(wake);
    return () => {
      wakes.delete(wake);
      if (wakes.size === 0) byOrganization.delete(organizationId);
    };
  };

  return {
    waiter(organizationId) {
      let wokenAt: number | undefined;
      let release: (() => void) | undefined;
      const unsubscribe = subscribe(organizationId, (notifiedAt) => {
        wokenAt = notifiedAt;
        release?.();
      });
      return {
        lastNotifiedAt,
        wait(timeoutMs, signal) {
          if (wokenAt !== undefined || signal?.aborted) {
            const at = wokenAt;
            wokenAt = undefined;
            return Promise.resolve(at);
          }
          return new Promise<number | undefined>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', done);
              release = undefined;
              const at = wokenAt;
              wokenAt = undefined;
              resolve(at);
            };
            const timer = setTimeout(done, timeoutMs);
            signal?.addEventListener('abort', done);
            release = done;
          });
        },
        close: unsubscribe,
      };
    },
    notifiedSince(organizationId, since) {
      if (!listening) return true;
      const last = notifiedAtByOrganization.get(organizationId) ?? forgottenThrough;
      return Math.max(last, everyOrganizationNotifiedAt) >= since;
    },
    async close() {
      const current = listening;
      listening = undefined;
      await (await current)?.unlisten().catch(() => {});
    },
  };
}

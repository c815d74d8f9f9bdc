/**
 * The one drainer (run by the leader tab): sends the outbox's pending transactions in
 * sequence order with their original transaction id and expected version, and records what
 * each answer means (transaction-outcome.ts). Sending is separate from confirming: a `sent`
 * transaction does not hold up the next one.
 *
 *   wake (timer · online · visible · new entry)
 *     └► pass: for each pending entry, oldest first
 *          ├ its entity is blocked (earlier entry retrying or in conflict) → skip
 *          ├ not due yet (backoff) → block its entity, wake again when due
 *          ├ answer may have been lost → GET .../transactions/{txId}: applied → confirmed
 *          └ send → sent | conflict | failed (+ cascade / rebase) | retry (+ block entity)
 *     a pass in which no request got an answer stops early: the device is offline
 */
import type { ApiClient } from './api-client.ts';
import {
  CASCADE_ERROR,
  EXPECTED_TRANSACTION_HEADER,
  TIMEOUT_ERROR,
  TRANSACTION_ID_HEADER,
} from './constants.ts';
import type { EntityDefinition } from './entity.ts';
import { entityKey, type OutboxDatabase } from './outbox.ts';
import {
  type AttemptOutcome,
  needsStatusCheck,
  networkFailure,
  outcomeOf,
  retryDelay,
} from './transaction-outcome.ts';
import type { OutboxEntry } from './types.ts';

export interface DrainerOptions {
  db: OutboxDatabase;
  api: ApiClient;
  organization: string;
  entity(name: string): EntityDefinition | undefined;
  requestTimeoutMs: number;
  /** Called after every answer (true) or lost request (false). */
  onReachable(reachable: boolean): void;
  /** A transaction the status endpoint reports applied: confirm it and refresh its row. */
  confirmApplied(entry: OutboxEntry): Promise<void>;
}

export interface Drainer {
  wake(): void;
  stop(): Promise<void>;
}

interface HttpRequest {
  method: 'POST' | 'PATCH' | 'DELETE';
  url: string;
  path: Record<string, string>;
  body?: Record<string, unknown>;
}

function requestOf(entry: OutboxEntry, definition: EntityDefinition | undefined): HttpRequest | undefined {
  const org = entry.organization;
  if (entry.action === 'undo') {
    if (!entry.undoOf) return undefined;
    return {
      method: 'POST',
      url: '/api/organizations/{org}/transactions/{transactionId}/undo',
      path: { org, transactionId: entry.undoOf },
    };
  }
  if (!definition) return undefined;
  if (entry.action === 'create')
    return {
      method: 'POST',
      url: `/api/organizations/{org}/${definition.path}`,
      path: { org },
      body: { ...entry.payload, id: entry.entityId },
    };
  const url = `/api/organizations/{org}/${definition.path}/{id}`;
  if (entry.action === 'update')
    return { method: 'PATCH', url, path: { org, id: entry.entityId }, body: entry.payload };
  return { method: 'DELETE', url, path: { org, id: entry.entityId } };
}

export function startDrainer(options: DrainerOptions): Drainer {
  const { db, api } = options;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const inFlight = new Set<AbortController>();

  const schedule = (at: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(wake, Math.max(0, at - Date.now()));
  };

  async function call(request: HttpRequest & { headers: Record<string, string> }) {
    const controller = new AbortController();
    inFlight.add(controller);
    const timeout = setTimeout(() => controller.abort(), options.requestTimeoutMs);
    try {
      const result = await api.request({
        ...request,
        signal: controller.signal,
        parseAs: 'json',
        headers: { 'Content-Type': 'application/json', ...request.headers },
      });
      if (!result.response) {
        const failure = controller.signal.aborted
          ? networkFailure(`no answer in ${options.requestTimeoutMs} ms`, TIMEOUT_ERROR)
          : networkFailure(
              String((result.error as Error | undefined)?.message ?? result.error ?? 'network error'),
            );
        return { response: undefined, failure } as const;
      }
      return { response: result.response, body: result.response.ok ? result.data : result.error } as const;
    } finally {
      clearTimeout(timeout);
      inFlight.delete(controller);
    }
  }

  /** GET .../transactions/{txId}: true when the server recorded it as applied. */
  async function appliedOnServer(entry: OutboxEntry): Promise<boolean | undefined> {
    const controller = new AbortController();
    inFlight.add(controller);
    const timeout = setTimeout(() => controller.abort(), options.requestTimeoutMs);
    try {
      const result = await api.get({
        url: '/api/organizations/{org}/transactions/{transactionId}',
        path: { org: entry.organization, transactionId: entry.txId },
        signal: controller.signal,
      });
      if (!result.response) return undefined;
      return result.response.status === 200;
    } finally {
      clearTimeout(timeout);
      inFlight.delete(controller);
    }
  }

  async function record(entry: OutboxEntry, outcome: AttemptOutcome): Promise<void> {
    await db.transaction('rw', db.transactions, async () => {
      const current = await db.transactions.get(entry.seq);
      if (!current || current.txId !== entry.txId || current.status !== 'pending') return;
      const now = Date.now();
      switch (outcome.kind) {
        case 'sent':
          await db.transactions.update(entry.seq, {
            status: 'sent',
            sentAt: now,
            lastError: null,
            serverVersion: outcome.serverVersion,
            serverTxid: outcome.serverTxid,
          });
          return;
        case 'conflict':
          await db.transactions.update(entry.seq, {
            status: 'conflict',
            settledAt: now,
            lastError: outcome.error,
            serverVersion: outcome.serverVersion,
          });
          return;
        case 'retry':
          await db.transactions.update(entry.seq, {
            retries: current.retries + 1,
            nextAttemptAt: now + retryDelay(current.retries + 1),
            lastError: outcome.error,
          });
          return;
        case 'failed': {
          await db.transactions.update(entry.seq, {
            status: 'failed',
            settledAt: now,
            lastError: outcome.error,
          });
          const later = await db.transactions
            .where('[organization+entityType+entityId]')
            .equals([entry.organization, entry.entityType, entry.entityId])
            .filter((other) => other.seq > entry.seq && other.status === 'pending')
            .toArray();
          for (const other of later) {
            if (entry.action === 'create') {
              // nothing of an entity that never existed can apply: fail its later writes with it
              await db.transactions.update(other.seq, {
                status: 'failed',
                settledAt: now,
                cascadedFrom: entry.txId,
                lastError: { code: CASCADE_ERROR, message: outcome.error.message },
              });
            } else if (other.expectedVersion === entry.txId) {
              // the failed change is rolled back: later changes were made on top of what it replaced
              await db.transactions.update(other.seq, { expectedVersion: entry.expectedVersion });
            }
          }
        }
      }
    });
  }

  /** One attempt for one entry; true when the server gave an answer. */
  async function attempt(entry: OutboxEntry): Promise<boolean> {
    if (needsStatusCheck(entry.lastError)) {
      const applied = await appliedOnServer(entry);
      if (applied === undefined) {
        await record(entry, { kind: 'retry', error: networkFailure('status check got no answer') });
        return false;
      }
      if (applied) {
        await options.confirmApplied(entry);
        return true;
      }
    }
    const request = requestOf(entry, options.entity(entry.entityType));
    if (!request) return true; // entity type not registered in this tab: leave it queued
    const headers: Record<string, string> = { [TRANSACTION_ID_HEADER]: entry.txId };
    if (entry.expectedVersion && entry.action !== 'create' && entry.action !== 'undo')
      headers[EXPECTED_TRANSACTION_HEADER] = entry.expectedVersion;
    const answer = await call({ ...request, headers });
    await record(entry, outcomeOf(answer));
    return answer.response !== undefined;
  }

  async function pass(): Promise<void> {
    const entries = await db.transactions.where('organization').equals(options.organization).sortBy('seq');
    const blocked = new Set<string>();
    let nextDue = Number.POSITIVE_INFINITY;
    for (const listed of entries) {
      if (stopped) return;
      const key = entityKey(listed);
      if (listed.status === 'conflict') blocked.add(key);
      if (listed.status !== 'pending' || blocked.has(key)) continue;
      // another tab (keepMine, a rebase) may have changed it since the list was read
      const entry = await db.transactions.get(listed.seq);
      if (!entry || entry.status !== 'pending') continue;
      if (entry.nextAttemptAt > Date.now()) {
        blocked.add(key);
        nextDue = Math.min(nextDue, entry.nextAttemptAt);
        continue;
      }
      const answered = await attempt(entry);
      options.onReachable(answered);
      const after = await db.transactions.get(entry.seq);
      if (after?.status === 'pending') {
        blocked.add(key);
        nextDue = Math.min(nextDue, after.nextAttemptAt);
      }
      if (!answered) break; // offline: the rest would fail the same way; retry when due or online
    }
    if (nextDue !== Number.POSITIVE_INFINITY) schedule(nextDue);
  }

  function wake(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await pass();
        } while (again && !stopped);
      } finally {
        running = undefined;
      }
    })();
  }

  wake();
  return {
    wake,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      for (const controller of inFlight) controller.abort();
      await running?.catch(() => {});
    },
  };
}

/**
 * The one drainer (run by the leader tab): sends the outbox's pending transactions in
 * sequence order with their original transaction id and expected version, and records what
 * each answer means (transaction-outcome.ts). Sending is separate from confirming: a `sent`
 * transaction does not hold up the next one.
 *
 *   wake (timer · new entry; online · visible · drain(): writes that found the network down
 *         are due at once)
 *     └► pass (none while the browser says it is offline: what is made then was never sent,
 *        so it has no lost answer to settle when the connection returns)
 *          for each pending entry, oldest first
 *          ├ its entity is blocked (earlier entry retrying or in conflict) → skip
 *          ├ not due yet (backoff) → block its entity, wake again when due
 *          ├ wait: the previous write of its entity answered, earlier creates of other entity
 *          │       types answered (what it may refer to),
 *          │       a free slot (`concurrency` requests in flight)
 *          ├ answer may have been lost → GET .../transactions/{txId}: applied → confirmed
 *          └ send → sent | conflict | failed (+ cascade / rebase) | retry (+ block entity)
 *            (outcomes that arrive while one is stored are stored together in the next transaction)
 *     a request that gets no answer stops the pass: the device is offline
 */
import { getTransactionStatus, undoTransaction } from '../../api.gen/sdk.gen.ts';
import type { ApiClient } from './api-client.ts';
import {
  EXPECTED_TRANSACTION_HEADER,
  NETWORK_ERROR,
  TIMEOUT_ERROR,
  TRANSACTION_ID_HEADER,
} from './constants.ts';
import type { EntityDefinition } from './entity.ts';
import { entityKey, failedWithCreate, type OutboxDatabase } from './outbox.ts';
import {
  type AttemptOutcome,
  needsStatusCheck,
  networkFailure,
  outcomeOf,
  retryDelay,
} from './transaction-outcome.ts';
import type { OutboxEntry } from './types.ts';
import { inverseOfActivity } from './undo-inverse.ts';

export interface DrainerOptions {
  db: OutboxDatabase;
  api: ApiClient;
  organization: string;
  entity(name: string): EntityDefinition | undefined;
  requestTimeoutMs: number;
  /** Requests in flight at once (writes of one entity always go one after another). */
  concurrency: number;
  /** False while the browser says it has no network: nothing is sent until it returns. */
  browserOnline(): boolean;
  /** Called after every answer (true) or lost request (false). */
  onReachable(reachable: boolean): void;
  /**
   * An attempt's outcome was stored: `changes` to the entry, and whether other entries of its
   * entity changed too (a cascade or rebase), for the tab to show without re-reading.
   */
  onRecorded(entry: OutboxEntry, changes: Partial<OutboxEntry>, othersChanged: boolean): void;
  /** A transaction storing outcomes committed with at least one of them (each then `onRecorded`). */
  onOutcomesStored(): void;
  /** A transaction the status endpoint reports applied: confirm it and refresh its row. */
  confirmApplied(entry: OutboxEntry): Promise<void>;
}

export interface Drainer {
  /** `connectionBack`: the network returned, so writes that found it down are due now. */
  wake(options?: { connectionBack?: boolean }): void;
  stop(): Promise<void>;
}

interface HttpRequest {
  method: 'POST' | 'PATCH' | 'DELETE';
  url: string;
  path: Record<string, string>;
  body?: Record<string, unknown>;
}

/** What one attempt sends: with these headers, cancelled by this signal. */
type Send = (
  api: ApiClient,
  headers: Record<string, string>,
  signal: AbortSignal,
) => Promise<{ response?: Response | undefined; data?: unknown; error?: unknown }>;

/** An undo is its own SDK call; the writes of tracked entities share one generic path. */
function sendOf(entry: OutboxEntry, definition: EntityDefinition | undefined): Send | undefined {
  if (entry.action === 'undo') {
    const transactionId = entry.undoOf;
    if (!transactionId) return undefined;
    return (api, headers, signal) =>
      undoTransaction({
        client: api,
        path: { org: entry.organization, transactionId },
        headers,
        signal,
        parseAs: 'json',
      });
  }
  const request = requestOf(entry, definition);
  if (!request) return undefined;
  return (api, headers, signal) =>
    api.request({
      ...request,
      signal,
      parseAs: 'json',
      headers: { 'Content-Type': 'application/json', ...headers },
    });
}

function requestOf(entry: OutboxEntry, definition: EntityDefinition | undefined): HttpRequest | undefined {
  const org = entry.organization;
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

/** At most `limit` holders at a time. */
function createSlots(limit: number) {
  let free = limit;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  return {
    acquire(): Promise<() => void> {
      if (free > 0) {
        free--;
        return Promise.resolve(release);
      }
      return new Promise((resolve) => waiting.push(() => resolve(release)));
    },
  };
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

  async function call(send: Send, headers: Record<string, string>) {
    const controller = new AbortController();
    inFlight.add(controller);
    const timeout = setTimeout(() => controller.abort(), options.requestTimeoutMs);
    try {
      const result = await send(api, headers, controller.signal);
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

  /**
   * For an undo in conflict: the entity and the write it meant, from the undone transaction's
   * activity (nothing when that cannot be read now: the dialog then shows their version).
   */
  async function undoneWrite(entry: OutboxEntry): Promise<Partial<OutboxEntry>> {
    if (!entry.undoOf) return {};
    const result = await getTransactionStatus({
      client: api,
      path: { org: entry.organization, transactionId: entry.undoOf },
      signal: AbortSignal.timeout(options.requestTimeoutMs),
    }).catch(() => undefined);
    const activity = result?.data?.activity;
    if (!activity) return {};
    return {
      entityType: activity.entityType,
      entityId: activity.entityId,
      inverse: inverseOfActivity(activity),
    };
  }

  /** What one attempt's outcome changes in the outbox, waiting to be stored with others. */
  interface Outcome {
    entry: OutboxEntry;
    changes: Partial<OutboxEntry>;
    /** The entry's message when it failed (its entity's later writes fail with it). */
    failure?: string;
    done(stored: { stored: boolean; others: OutboxEntry[] }): void;
    fail(error: unknown): void;
  }
  const unstored: Outcome[] = [];
  let storing = false;

  /**
   * Stores outcomes in one database transaction each time: those that arrive while one is being
   * stored wait for it and go together in the next (a replay's answers come faster than the
   * database stores them one by one). An entry changed since it was sent (another tab's
   * `keepMine`) keeps what it has.
   */
  async function storeOutcomes(): Promise<void> {
    storing = true;
    try {
      await storeBatches();
    } finally {
      storing = false;
    }
  }
  async function storeBatches(): Promise<void> {
    while (unstored.length > 0) {
      const batch = unstored.splice(0);
      try {
        const results = await db.transaction('rw', db.transactions, async () => {
          const currents = await db.transactions.bulkGet(batch.map((outcome) => outcome.entry.seq));
          const results: { stored: boolean; others: OutboxEntry[] }[] = [];
          for (const [index, outcome] of batch.entries()) {
            const current = currents[index];
            const { entry } = outcome;
            if (!current || current.txId !== entry.txId || current.status !== 'pending') {
              results.push({ stored: false, others: [] });
              continue;
            }
            await db.transactions.put({ ...current, ...outcome.changes });
            results.push({
              stored: true,
              others: outcome.failure ? await afterFailure(entry, outcome.failure) : [],
            });
          }
          return results;
        });
        if (results.some((result) => result.stored)) options.onOutcomesStored();
        for (const [index, outcome] of batch.entries())
          outcome.done(results[index] ?? { stored: false, others: [] });
      } catch (error) {
        for (const outcome of batch) outcome.fail(error);
      }
    }
  }

  /** A failed entry's later writes: failed with it (a create), or re-pointed at what it replaced. */
  async function afterFailure(entry: OutboxEntry, message: string): Promise<OutboxEntry[]> {
    const later = await db.transactions
      .where('[organization+entityType+entityId]')
      .equals([entry.organization, entry.entityType, entry.entityId])
      .filter((other) => other.seq > entry.seq && other.status === 'pending')
      .toArray();
    const changed: OutboxEntry[] = [];
    for (const other of later) {
      if (entry.action === 'create') {
        // nothing of an entity that never existed can apply: fail its later writes with it
        changed.push({ ...other, ...failedWithCreate(entry, message) });
      } else if (other.expectedVersion === entry.txId) {
        // the failed change is rolled back: later changes were made on top of what it replaced
        changed.push({ ...other, expectedVersion: entry.expectedVersion });
      }
    }
    if (changed.length > 0) await db.transactions.bulkPut(changed);
    return changed;
  }

  /**
   * Stores what an attempt meant (with the outcomes that arrive meanwhile); returns when to try
   * again if the entry is still pending, and the other entries of its entity it changed.
   */
  async function record(
    entry: OutboxEntry,
    outcome: AttemptOutcome,
    learned: Partial<OutboxEntry> = {},
  ): Promise<{ retryAt: number | undefined; others: OutboxEntry[] }> {
    const retryAt = Date.now() + retryDelay(entry.retries + 1);
    const now = Date.now();
    const changes: Partial<OutboxEntry> =
      outcome.kind === 'sent'
        ? {
            status: 'sent',
            sentAt: now,
            lastError: null,
            serverVersion: outcome.serverVersion,
            serverTxid: outcome.serverTxid,
          }
        : outcome.kind === 'conflict'
          ? {
              ...learned,
              status: 'conflict',
              settledAt: now,
              lastError: outcome.error,
              serverVersion: outcome.serverVersion,
            }
          : outcome.kind === 'retry'
            ? { retries: entry.retries + 1, nextAttemptAt: retryAt, lastError: outcome.error }
            : { status: 'failed', settledAt: now, lastError: outcome.error };
    const { stored, others } = await new Promise<{ stored: boolean; others: OutboxEntry[] }>((done, fail) => {
      unstored.push({
        entry,
        changes,
        ...(outcome.kind === 'failed' ? { failure: outcome.error.message } : {}),
        done,
        fail,
      });
      if (!storing) void storeOutcomes();
    });
    if (stored) options.onRecorded(entry, changes, others.length > 0);
    return { retryAt: stored && outcome.kind === 'retry' ? retryAt : undefined, others };
  }

  /**
   * One attempt for one entry: `answered` when the server gave an answer, `retryAt` when the
   * entry is still pending afterwards. `requestsDone` is called once no more requests follow.
   */
  async function attempt(
    entry: OutboxEntry,
    requestsDone: () => void,
  ): Promise<{
    answered: boolean;
    retryAt?: number | undefined;
    conflict?: boolean;
    others?: OutboxEntry[];
  }> {
    if (needsStatusCheck(entry.lastError)) {
      const applied = await appliedOnServer(entry);
      if (applied === undefined) {
        const { retryAt } = await record(entry, {
          kind: 'retry',
          error: networkFailure('status check got no answer'),
        });
        return { answered: false, retryAt };
      }
      if (applied) {
        await options.confirmApplied(entry);
        return { answered: true };
      }
    }
    const send = sendOf(entry, options.entity(entry.entityType));
    // entity type not registered in this tab: leave it queued for a tab that knows it
    if (!send) return { answered: true, retryAt: Number.POSITIVE_INFINITY };
    const headers: Record<string, string> = { [TRANSACTION_ID_HEADER]: entry.txId };
    if (entry.expectedVersion && entry.action !== 'create' && entry.action !== 'undo')
      headers[EXPECTED_TRANSACTION_HEADER] = entry.expectedVersion;
    const answer = await call(send, headers);
    const outcome = outcomeOf(answer);
    const learned = outcome.kind === 'conflict' && entry.action === 'undo' ? await undoneWrite(entry) : {};
    requestsDone();
    const { retryAt, others } = await record(entry, outcome, learned);
    return {
      answered: answer.response !== undefined,
      retryAt,
      conflict: outcome.kind === 'conflict',
      others,
    };
  }

  async function pass(connectionBack: boolean): Promise<void> {
    // no request would leave the device; the `online` event wakes the drainer
    if (!options.browserOnline()) return;
    // only what may be sent, or holds back its entity: not the confirmed history
    const entries = await db.transactions
      .where('[organization+status]')
      .anyOf([
        [options.organization, 'pending'],
        [options.organization, 'conflict'],
      ])
      .sortBy('seq');
    const lastOfEntity = new Map<string, Promise<boolean>>();
    const blocked = new Set<string>();
    const createsByType = new Map<string, Promise<unknown>>();
    /** Earlier creates of other entity types: what a write may refer to (an attachment's page). */
    const earlierCreatesOtherThan = (type: string) =>
      Promise.all([...createsByType].filter(([other]) => other !== type).map(([, creates]) => creates));
    let nextDue = Number.POSITIVE_INFINITY;
    let offline = false;
    const slots = createSlots(options.concurrency);
    // The entries as read, kept up to date with what this pass stores: an earlier outcome
    // (cascade, rebase) is the only change a pending entry can see during a pass, except after
    // a conflict of its entity (`keepMine` or `takeTheirs` re-point the later writes), whose
    // later writes are read again.
    const known = new Map(entries.map((entry) => [entry.seq, entry]));
    const conflicted = new Set<string>();

    /** Sends one entry after what it depends on; true when it is no longer pending. */
    const send = async (
      seq: number,
      key: string,
      after: Promise<boolean>,
      creates: Promise<unknown>,
    ): Promise<boolean> => {
      if (!(await after)) return false; // an earlier write of this entity is still pending
      await creates;
      if (offline || stopped || !options.browserOnline()) return false;
      const release = await slots.acquire();
      let released = false;
      // the slot is free once the answer is in: storing what it meant need not hold a request back
      const freeSlot = () => {
        if (!released) release();
        released = true;
      };
      try {
        const entry = conflicted.has(key) ? await db.transactions.get(seq) : known.get(seq);
        if (entry?.status !== 'pending') return true;
        if (offline || stopped || !options.browserOnline()) return false;
        const result = await attempt(entry, freeSlot);
        for (const other of result.others ?? []) known.set(other.seq, other);
        if (result.conflict) conflicted.add(key);
        options.onReachable(result.answered);
        if (!result.answered) offline = true; // the rest would fail the same way; retry when due or online
        if (result.retryAt === undefined) return true;
        nextDue = Math.min(nextDue, result.retryAt);
        return false;
      } finally {
        freeSlot();
      }
    };

    for (const entry of entries) {
      const key = entityKey(entry);
      if (entry.status === 'conflict') blocked.add(key);
      if (entry.status !== 'pending' || blocked.has(key)) continue;
      const waitsForNetwork =
        entry.lastError?.code === NETWORK_ERROR || entry.lastError?.code === TIMEOUT_ERROR;
      if (entry.nextAttemptAt > Date.now() && !(connectionBack && waitsForNetwork)) {
        blocked.add(key);
        nextDue = Math.min(nextDue, entry.nextAttemptAt);
        continue;
      }
      const run = send(
        entry.seq,
        key,
        lastOfEntity.get(key) ?? Promise.resolve(true),
        earlierCreatesOtherThan(entry.entityType),
      );
      lastOfEntity.set(key, run);
      if (entry.action === 'create') {
        const creates = Promise.all([createsByType.get(entry.entityType), run]);
        // awaited only by later writes of other types, if any: a storage error must not go unhandled
        creates.catch(() => {});
        createsByType.set(entry.entityType, creates);
      }
    }
    await Promise.all(lastOfEntity.values());
    if (nextDue !== Number.POSITIVE_INFINITY) schedule(nextDue);
  }

  let connectionBack = false;
  function wake(wakeOptions: { connectionBack?: boolean } = {}): void {
    if (stopped) return;
    if (wakeOptions.connectionBack) connectionBack = true;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      try {
        do {
          again = false;
          const back = connectionBack;
          connectionBack = false;
          await pass(back).catch(() => schedule(Date.now() + 1_000)); // storage error: try again soon
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

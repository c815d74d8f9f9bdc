/**
 * One sync client: the outbox (shared by every tab), the overlay that TanStack Query shows,
 * and, in the leader tab only, the drainer and the live streams.
 *
 *   create/update/remove/undo ──► outbox row (IndexedDB) ──liveQuery──► overlay ──► query cache
 *                                      ▲        │                          ▲
 *                  confirm (same txn)  │        └─► drainer (leader) ─► API │
 *   shape stream (leader) ──► rows ────┘                                    │
 *                             rows ──────────────────liveQuery──────────────┘
 *   activity SSE (leader) ──► snapshot.activities / counts ──BroadcastChannel──► other tabs
 */

import { Dexie } from 'dexie';
import type { Activity } from '../../api.gen/types.gen.ts';
import { createApiClient } from './api-client.ts';
import { type Drainer, startDrainer } from './drainer.ts';
import { type EntityDefinition, versionOf } from './entity.ts';
import { browserEnvironment, type ChannelLike, type SyncEnvironment } from './environment.ts';
import { type BatchEffect, type LiveStreams, startLiveStreams } from './live-streams.ts';
import {
  type CachedRow,
  DEFAULT_DATABASE_NAME,
  entityKey,
  failedWithCreate,
  loadClientId,
  OutboxDatabase,
  pruneConfirmed,
} from './outbox.ts';
import { conflictsOf, failedWritesOf, overlay } from './overlay.ts';
import type { SyncClient, SyncClientOptions, WriteOptions } from './sync-client-types.ts';
import { type TableWatch, watchTable } from './table-watch.ts';
import { createEntityId, createTabId, createTransactionId } from './transaction-id.ts';
import type { MutationAction, OutboxEntry, SyncedItem, SyncSnapshot, TrackedEntity } from './types.ts';

type ChannelMessage =
  | { type: 'hello' }
  | { type: 'feed'; activities: Activity[]; counts: Record<string, number> }
  | { type: 'activity'; activity: Activity }
  | { type: 'counts'; counts: Record<string, number> };

interface Collection {
  definition: EntityDefinition;
  rows: ReadonlyMap<string, Record<string, unknown>>;
  items: SyncedItem<TrackedEntity>[];
}

const UNCONFIRMED = new Set(['pending', 'sent']);
const IN_VIEW = new Set(['pending', 'sent', 'conflict']);
/** More writes than this waiting to be sent is a replay: the activity stream pauses meanwhile. */
const REPLAY_QUEUED = 20;

export function createSyncClient(options: SyncClientOptions): SyncClient {
  const environment: SyncEnvironment = { ...browserEnvironment(), ...options.environment };
  const { organization, queryClient } = options;
  const databaseName = options.databaseName ?? DEFAULT_DATABASE_NAME;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const confirmAfterMs = options.confirmAfterMs ?? 3_000;
  const activityLimit = options.activityLimit ?? 100;
  const tabId = createTabId();
  const db = new OutboxDatabase(databaseName, environment);
  let clientId = options.clientId ?? '';
  const api = createApiClient({
    baseUrl: options.baseUrl,
    clientId: () => clientId,
    fetch: environment.fetch,
    ...(options.token ? { token: options.token } : {}),
  });

  const collections = new Map<string, Collection>();
  let rowsByType = new Map<string, Map<string, Record<string, unknown>>>();
  let stateWatch: TableWatch | undefined;
  // set when this tab becomes the leader
  let drainer: Drainer | undefined;
  let live: LiveStreams | undefined;
  const listeners = new Set<() => void>();
  const closing = new AbortController();
  const cleanups: (() => void)[] = [];
  let entries: OutboxEntry[] = [];
  let entryByTxId = new Map<string, OutboxEntry>();
  let unconfirmedByXid = new Map<string, number>();
  /** Sent by this tab's drainer and not yet in `entries` (another tab's entry not read yet). */
  const seqBySentTxId = new Map<string, number>();
  let reachable = true;
  let browserOnline = environment.isOnline();
  let snapshot: SyncSnapshot = {
    ready: false,
    online: browserOnline,
    leader: false,
    outbox: [],
    queued: 0,
    conflicts: [],
    failed: [],
    activities: [],
    counts: {},
  };

  const emit = () => {
    for (const listener of listeners) listener();
  };
  const unlessBothEmpty = <T>(previous: readonly T[], next: T[]) =>
    previous.length === 0 && next.length === 0 ? previous : next;
  const setSnapshot = (changes: Partial<SyncSnapshot>) => {
    snapshot = { ...snapshot, ...changes };
    emit();
  };
  const queryKey = (entity: EntityDefinition) => ['sync', organization, entity.name] as const;
  // every list is a new array built by `overlay`: TanStack Query's structural sharing would
  // compare each item with the last list's, deeply, on every recompute (the largest cost at
  // 50 writes/s), and it finds nothing to keep
  queryClient.setQueryDefaults(['sync', organization], { structuralSharing: false });

  function recompute(collection: Collection) {
    const own = entries.filter((entry) => entry.entityType === collection.definition.name);
    const items = overlay(collection.rows, own, collection.items);
    if (items === collection.items) return;
    collection.items = items;
    queryClient.setQueryData(queryKey(collection.definition), items);
  }

  function onOutbox(next: OutboxEntry[]) {
    entries = next;
    entryByTxId = new Map(next.map((entry) => [entry.txId, entry]));
    unconfirmedByXid = new Map(
      next.filter((e) => e.serverTxid && UNCONFIRMED.has(e.status)).map((e) => [e.serverTxid ?? '', e.seq]),
    );
    for (const txId of seqBySentTxId.keys()) if (entryByTxId.has(txId)) seqBySentTxId.delete(txId);
    for (const collection of collections.values()) recompute(collection);
    const rowOf = (entry: OutboxEntry) => collections.get(entry.entityType)?.rows.get(entry.entityId);
    setSnapshot({
      ready: true,
      outbox: next,
      queued: next.filter((entry) => entry.status === 'pending').length,
      // nothing to show stays the same array, so the views showing them do not redraw
      conflicts: unlessBothEmpty(snapshot.conflicts, conflictsOf(next, rowOf)),
      failed: unlessBothEmpty(snapshot.failed, failedWritesOf(next)),
    });
    // a replay's writes get the activity stream's connection; the feed catches up after it
    live?.followActivities(snapshot.queued <= REPLAY_QUEUED);
    // new entries go out at once; while the API is unreachable they wait for the backoff timer
    // or the connection's return instead of each knocking again
    if (reachable) drainer?.wake();
  }

  const addActivity = (activity: Activity) => {
    if (snapshot.activities.some((known) => known.id === activity.id)) return; // a resumed stream may repeat
    setSnapshot({ activities: [activity, ...snapshot.activities].slice(0, activityLimit) });
  };

  // the feed and counts as last seen, so a reload shows them before the stream answers
  const feedKey = `feed/${organization}`;
  let feedSaveTimer: ReturnType<typeof setTimeout> | undefined;
  const saveFeed = () => {
    if (feedSaveTimer) return;
    feedSaveTimer = setTimeout(() => {
      feedSaveTimer = undefined;
      const value = JSON.stringify({ activities: snapshot.activities, counts: snapshot.counts });
      void db.meta.put({ key: feedKey, value }).catch(() => {});
    }, 500);
  };
  cleanups.push(() => clearTimeout(feedSaveTimer));
  const loadFeed = async () => {
    const saved = await db.meta.get(feedKey);
    if (!saved) return;
    const feed: { activities?: Activity[]; counts?: Record<string, number> } = JSON.parse(saved.value);
    setSnapshot({ activities: feed.activities ?? [], counts: feed.counts ?? {} });
  };

  /** The outbox and the cached rows, read in one database transaction so they always agree. */
  const readState = () =>
    db.transaction('r', db.transactions, db.rows, async () => ({
      changesBefore: localGeneration,
      outbox: await db.transactions.where('organization').equals(organization).sortBy('seq'),
      rows: await db.rows
        .where('[organization+entityType]')
        .between([organization, Dexie.minKey], [organization, Dexie.maxKey])
        .toArray(),
    }));

  /**
   * This tab's own changes to the outbox, already stored, that a read begun before they were
   * stored does not contain: laid over such a read, so a shown entry never falls back.
   */
  let localGeneration = 0;
  let localChanges: { generation: number; apply: (outbox: OutboxEntry[]) => OutboxEntry[] }[] = [];
  function storedLocally(apply: (outbox: OutboxEntry[]) => OutboxEntry[]) {
    localChanges.push({ generation: ++localGeneration, apply });
  }

  function onState(state: { changesBefore: number; outbox: OutboxEntry[]; rows: CachedRow[] }) {
    const byType = new Map<string, Map<string, Record<string, unknown>>>();
    for (const row of state.rows) {
      const rows = byType.get(row.entityType) ?? new Map();
      rows.set(row.id, row.value);
      byType.set(row.entityType, rows);
    }
    rowsByType = byType;
    for (const collection of collections.values())
      collection.rows = byType.get(collection.definition.name) ?? new Map();
    localChanges = localChanges.filter((change) => change.generation > state.changesBefore);
    onOutbox(localChanges.reduce((outbox, change) => change.apply(outbox), state.outbox));
  }

  const ready: Promise<void> = (async () => {
    if (!clientId) clientId = await loadClientId(db);
    await loadFeed().catch(() => {});
    await new Promise<void>((resolve, reject) => {
      const watch = watchTable({
        databaseName,
        tables: ['transactions', 'rows'],
        read: readState,
        onValue(state) {
          onState(state);
          resolve();
        },
        onError: reject,
      });
      stateWatch = watch;
      cleanups.push(() => watch.stop());
    });
  })();

  function collection(definition: EntityDefinition): Collection {
    const existing = collections.get(definition.name);
    if (existing) return existing;
    const created: Collection = { definition, rows: rowsByType.get(definition.name) ?? new Map(), items: [] };
    collections.set(definition.name, created);
    recompute(created);
    live?.follow(definition);
    return created;
  }
  for (const definition of options.entities ?? []) collection(definition);

  // ── leader: drainer, live streams, status settling ───────────────────────────────────────
  const channel: ChannelLike | undefined = environment.createChannel?.(
    `sync/${databaseName}/${organization}`,
  );
  const post = (message: ChannelMessage) => channel?.postMessage(message);

  const updateOnline = () => {
    const online = browserOnline && reachable;
    if (online !== snapshot.online) setSnapshot({ online });
  };

  async function confirmApplied(entry: OutboxEntry): Promise<void> {
    const definition = collections.get(entry.entityType)?.definition;
    const key: [string, string, string] = [organization, entry.entityType, entry.entityId];
    let row: Record<string, unknown> | null | undefined;
    if (definition) {
      const result = await api.get({
        url: `/api/organizations/{org}/${definition.path}/{id}`,
        path: { org: organization, id: entry.entityId },
      });
      if (result.response?.status === 200 && typeof result.data === 'object' && result.data !== null)
        row = { ...result.data };
      else if (result.response?.status === 404) row = null;
    }
    await db.transaction('rw', db.rows, db.transactions, async () => {
      if (row)
        await db.rows.put({ organization, entityType: entry.entityType, id: entry.entityId, value: row });
      else if (row === null) await db.rows.delete(key);
      await db.transactions
        .where('txId')
        .equals(entry.txId)
        .filter((current) => UNCONFIRMED.has(current.status))
        .modify({ status: 'confirmed', settledAt: Date.now() });
    });
  }

  const statusCheckedAt = new Map<string, number>();
  async function settleSlowConfirmations(): Promise<void> {
    const now = Date.now();
    for (const entry of entries) {
      if (entry.status !== 'sent' || (entry.sentAt ?? now) > now - confirmAfterMs) continue;
      if ((statusCheckedAt.get(entry.txId) ?? 0) > now - confirmAfterMs) continue;
      statusCheckedAt.set(entry.txId, now);
      const result = await api.get({
        url: '/api/organizations/{org}/transactions/{transactionId}',
        path: { org: organization, transactionId: entry.txId },
      });
      if (result.response?.status === 200) await confirmApplied(entry);
    }
  }

  /** Shows a stored shape batch at once, without waiting for the next (throttled) read. */
  function showBatch(effect: BatchEffect): void {
    if (effect.wrote) stateWatch?.shown();
    if (effect.refetched) {
      void stateWatch?.refresh();
      return;
    }
    const rows = new Map(rowsByType.get(effect.entityType));
    for (const [id, value] of effect.rows) {
      if (value) rows.set(id, value);
      else rows.delete(id);
    }
    rowsByType.set(effect.entityType, rows);
    const target = collections.get(effect.entityType);
    if (target) target.rows = rows;
    // the rows and the confirmations are shown in the same recompute, so nothing flickers
    const confirmed = new Set(effect.confirmed);
    patchEntries((entry) =>
      confirmed.has(entry.seq) ? { ...entry, status: 'confirmed', settledAt: effect.settledAt } : entry,
    );
  }

  /**
   * Changes this tab made to entries, shown together at most once a frame: a replay records
   * hundreds of outcomes a second, and each showing recomputes every list. (Showing a change
   * after a quiet frame at once, without the wait, made writes at 50/s fall seconds behind.)
   */
  const entryPatches: ((entry: OutboxEntry) => OutboxEntry)[] = [];
  let patchTimer: ReturnType<typeof setTimeout> | undefined;
  function patchEntries(patch: (entry: OutboxEntry) => OutboxEntry): void {
    storedLocally((outbox) => outbox.map(patch));
    entryPatches.push(patch);
    patchTimer ??= setTimeout(() => {
      patchTimer = undefined;
      const patches = entryPatches.splice(0);
      onOutbox(entries.map((entry) => patches.reduce((patched, apply) => apply(patched), entry)));
    }, 16);
  }
  cleanups.push(() => clearTimeout(patchTimer));

  function becomeLeader(): void {
    setSnapshot({ leader: true });
    drainer = startDrainer({
      db,
      api,
      organization,
      entity: (name) => collections.get(name)?.definition,
      requestTimeoutMs,
      concurrency: options.concurrency ?? 4,
      browserOnline: () => browserOnline,
      onReachable(answered) {
        if (answered && !reachable) live?.reconnect();
        reachable = answered;
        updateOnline();
      },
      confirmApplied,
      onOutcomesStored: () => stateWatch?.shown(),
      onRecorded(recorded, changes, othersChanged) {
        if (changes.serverTxid) seqBySentTxId.set(recorded.txId, recorded.seq);
        if (othersChanged) void stateWatch?.refresh();
        else patchEntries((entry) => (entry.seq === recorded.seq ? { ...entry, ...changes } : entry));
      },
    });
    live = startLiveStreams({
      db,
      api,
      baseUrl: options.baseUrl,
      organization,
      token: options.token,
      fetch: environment.fetch,
      unconfirmedByXid: () => unconfirmedByXid,
      knownTransaction(txId) {
        const entry = entryByTxId.get(txId);
        if (entry) return UNCONFIRMED.has(entry.status) ? entry.seq : 'settled';
        return seqBySentTxId.get(txId);
      },
      onBatch: showBatch,
      activitiesAfter: () => snapshot.activities[0]?.id,
      onActivity(activity) {
        addActivity(activity);
        post({ type: 'activity', activity });
        saveFeed();
      },
      onCounts(counts) {
        setSnapshot({ counts });
        post({ type: 'counts', counts });
        saveFeed();
      },
    });
    for (const { definition } of collections.values()) live.follow(definition);
    live.followActivities(snapshot.queued <= REPLAY_QUEUED);
    const prune = setInterval(() => void pruneConfirmed(db, organization).catch(() => {}), 10_000);
    void pruneConfirmed(db, organization).catch(() => {});
    cleanups.push(() => clearInterval(prune));
    const settle = setInterval(
      () => {
        void settleSlowConfirmations().catch(() => {});
      },
      Math.max(250, confirmAfterMs / 3),
    );
    cleanups.push(() => clearInterval(settle));
  }

  channel?.addEventListener('message', (event: MessageEvent) => {
    const message = event.data as ChannelMessage;
    if (message.type === 'hello' && snapshot.leader)
      post({ type: 'feed', activities: [...snapshot.activities], counts: snapshot.counts });
    else if (message.type === 'feed' && !snapshot.leader)
      setSnapshot({ activities: message.activities, counts: message.counts });
    else if (message.type === 'activity' && !snapshot.leader) addActivity(message.activity);
    else if (message.type === 'counts' && !snapshot.leader) setSnapshot({ counts: message.counts });
  });
  post({ type: 'hello' });

  const electLeader = () => {
    if (closing.signal.aborted) return;
    if (!environment.locks) {
      becomeLeader();
      return;
    }
    // queued behind the current leader; granted when it closes (failover)
    environment.locks
      .request(`sync-leader/${databaseName}/${organization}`, { signal: closing.signal }, async () => {
        if (closing.signal.aborted) return;
        becomeLeader();
        await new Promise<void>((resolve) => closing.signal.addEventListener('abort', () => resolve()));
      })
      .catch(() => {});
  };
  // a first read that fails (the client closed, or its page went away, while it ran) elects no
  // leader; whoever awaits `ready` sees the error, nothing is left unhandled
  ready.then(electLeader, () => {});

  cleanups.push(
    environment.onWake(() => {
      drainer?.wake({ connectionBack: true });
      live?.reconnect();
    }),
    environment.onConnectivity((online) => {
      browserOnline = online;
      if (online) reachable = true;
      updateOnline();
      if (online) {
        drainer?.wake({ connectionBack: true });
        live?.reconnect();
      }
    }),
  );

  // ── writes ───────────────────────────────────────────────────────────────────────────────
  async function enqueue(
    definition: EntityDefinition | undefined,
    fields: {
      entityType: string;
      entityId: string;
      action: MutationAction;
      payload: Record<string, unknown>;
    },
    write: WriteOptions & { undoOf?: string } = {},
  ): Promise<string> {
    await ready;
    if (definition) collection(definition);
    const txId = createTransactionId();
    const entry = await db.transaction('rw', db.transactions, db.rows, async () => {
      let expectedVersion: string | null = null;
      let failedCreate: OutboxEntry | undefined;
      if (fields.action === 'update' || fields.action === 'delete') {
        const earlier = await db.transactions
          .where('[organization+entityType+entityId]')
          .equals([organization, fields.entityType, fields.entityId])
          .sortBy('seq');
        // a change to an entity whose create failed (not yet dismissed) fails with it, also when
        // it is made after that failure was stored
        failedCreate = earlier.find((entry) => entry.action === 'create' && entry.status === 'failed');
        if (write.expectedVersion !== undefined) expectedVersion = write.expectedVersion;
        else {
          const latest = earlier.filter((entry) => IN_VIEW.has(entry.status)).at(-1);
          const row = await db.rows.get([organization, fields.entityType, fields.entityId]);
          expectedVersion = latest ? latest.txId : row ? versionOf(row.value) : null;
        }
      }
      const fresh: Omit<OutboxEntry, 'seq'> = {
        txId,
        organization,
        ...fields,
        expectedVersion,
        status: 'pending',
        retries: 0,
        nextAttemptAt: 0,
        lastError: null,
        serverVersion: null,
        serverTxid: null,
        undoOf: write.undoOf ?? null,
        replaces: null,
        cascadedFrom: null,
        clientId,
        tabId,
        createdAt: Date.now(),
        sentAt: null,
        settledAt: null,
        ...(failedCreate &&
          failedWithCreate(failedCreate, failedCreate.lastError?.message ?? 'its create failed')),
      };
      const seq = await db.transactions.add(fresh);
      return { ...fresh, seq };
    });
    stateWatch?.shown();
    // shown at once; the next read of the outbox brings the same row
    const add = (outbox: OutboxEntry[]) =>
      outbox.some((e) => e.seq === entry.seq) ? outbox : [...outbox, entry];
    storedLocally(add);
    onOutbox(add(entries));
    return txId;
  }

  async function conflicted(txId: string): Promise<OutboxEntry> {
    await ready;
    const entry = await db.transactions.where('txId').equals(txId).first();
    if (entry?.status !== 'conflict') throw new Error(`transaction ${txId} is not in conflict`);
    return entry;
  }

  /** Later entries of the entity made on top of `fromTxId` now stand on `toVersion`. */
  async function rebaseLater(entry: OutboxEntry, fromTxId: string, toVersion: string | null) {
    await db.transactions
      .where('[organization+entityType+entityId]')
      .equals([entry.organization, entry.entityType, entry.entityId])
      .filter((other) => other.seq > entry.seq && other.expectedVersion === fromTxId)
      .modify({ expectedVersion: toVersion });
  }

  async function storeServerRow(entry: OutboxEntry) {
    const theirs = entry.serverVersion;
    if (!theirs) return;
    await db.rows.put({ organization, entityType: entry.entityType, id: entry.entityId, value: theirs });
  }

  /**
   * Keep mine for an undo: the write it meant, as an ordinary update or delete (the undo
   * endpoint applies only to the version the undone transaction left).
   */
  function undoAsWrite(entry: OutboxEntry): Pick<OutboxEntry, 'action' | 'payload'> {
    const inverse = entry.inverse;
    if (inverse?.action === 'update') return { action: 'update', payload: inverse.values };
    if (inverse?.action === 'delete') return { action: 'delete', payload: {} };
    throw new Error(
      inverse?.action === 'restore'
        ? 'the delete was already undone or followed by a newer change: take theirs'
        : 'what this undo meant to change is not known: take theirs, then undo again',
    );
  }

  const serverVersionOf = (entry: OutboxEntry) =>
    entry.serverVersion ? versionOf(entry.serverVersion) : null;

  const client: SyncClient = {
    organization,
    get clientId() {
      return clientId;
    },
    tabId,
    ready,
    api,

    queryOptions<T extends TrackedEntity>(entity: EntityDefinition<T, object, object>) {
      return {
        queryKey: queryKey(entity),
        queryFn: async () => {
          await ready;
          return collection(entity).items as SyncedItem<T>[];
        },
        staleTime: Number.POSITIVE_INFINITY,
        structuralSharing: false,
      };
    },
    items<T extends TrackedEntity>(entity: EntityDefinition<T, object, object>) {
      return collection(entity).items as SyncedItem<T>[];
    },

    async create(entity, values) {
      const { id: chosen, ...payload } = Object.fromEntries(Object.entries(values));
      const id = typeof chosen === 'string' ? chosen : createEntityId();
      const txId = await enqueue(entity, {
        entityType: entity.name,
        entityId: id,
        action: 'create',
        payload,
      });
      return { txId, id };
    },
    async update(entity, id, patch, write = {}) {
      const payload: Record<string, unknown> = Object.fromEntries(Object.entries(patch));
      return {
        txId: await enqueue(
          entity,
          { entityType: entity.name, entityId: id, action: 'update', payload },
          write,
        ),
      };
    },
    async remove(entity, id, write = {}) {
      return {
        txId: await enqueue(
          entity,
          { entityType: entity.name, entityId: id, action: 'delete', payload: {} },
          write,
        ),
      };
    },
    async undo(target) {
      await ready;
      const original = await db.transactions.where('txId').equals(target).first();
      const fields = {
        entityType: original?.entityType ?? '',
        entityId: original?.entityId ?? target,
        action: 'undo' as const,
        payload: {},
      };
      return { txId: await enqueue(undefined, fields, { undoOf: target }) };
    },

    async keepMine(txId) {
      const entry = await conflicted(txId);
      if (entry.lastError?.code === 'ENTITY_DELETED')
        throw new Error('the entity was deleted on the server: take theirs, or undo their delete first');
      const next = createTransactionId();
      const against = serverVersionOf(entry);
      const write = entry.action === 'undo' ? undoAsWrite(entry) : {};
      await db.transaction('rw', db.transactions, db.rows, async () => {
        await storeServerRow(entry);
        await db.transactions.update(entry.seq, {
          ...write,
          txId: next,
          status: 'pending',
          expectedVersion: against,
          retries: 0,
          nextAttemptAt: 0,
          lastError: null,
          serverVersion: null,
          replaces: entry.txId,
          settledAt: null,
        });
        await rebaseLater(entry, entry.txId, next);
      });
      return { txId: next };
    },
    async takeTheirs(txId) {
      const entry = await conflicted(txId);
      await db.transaction('rw', db.transactions, db.rows, async () => {
        await storeServerRow(entry);
        await db.transactions.delete(entry.seq);
        await rebaseLater(entry, entry.txId, serverVersionOf(entry));
      });
    },
    async dismiss(txId) {
      await ready;
      await db.transactions
        .where('organization')
        .equals(organization)
        .filter((entry) => entry.status === 'failed' && (entry.txId === txId || entry.cascadedFrom === txId))
        .delete();
    },

    transaction: (txId) => entryByTxId.get(txId),
    waitFor(txId, statuses, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const entry = entryByTxId.get(txId);
          if (!entry || !statuses.includes(entry.status)) return false;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(entry);
          return true;
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          const entry = entries.find((e) => e.txId === txId);
          reject(
            new Error(
              `transaction ${txId} is ${entry?.status ?? 'unknown'}, not ${statuses.join('|')}, after ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        if (!check()) listeners.add(check);
      });
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => snapshot,
    drain() {
      drainer?.wake({ connectionBack: true });
      live?.reconnect();
    },

    async close() {
      closing.abort();
      await drainer?.stop();
      live?.close();
      for (const cleanup of cleanups) cleanup();
      channel?.close();
      db.close();
    },
  };
  return client;
}

export { entityKey };

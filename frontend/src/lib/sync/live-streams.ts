/**
 * The leader's live connections. Each entity's shape stream (the official Electric client)
 * writes the rows it delivers to the database and, in the same database transaction, confirms
 * the outbox entries whose transaction ids it carries, so every tab sees both at once. The
 * activity stream (SSE, through the SDK) feeds the activity list and counts; it is paused
 * while a replay is under way (`followActivities`) and resumes after the newest activity the
 * device has.
 */
import {
  type ChangeMessage,
  isChangeMessage,
  isControlMessage,
  type Message,
  ShapeStream,
} from '@electric-sql/client';
import { streamActivities } from '../../api.gen/sdk.gen.ts';
import type { Activity } from '../../api.gen/types.gen.ts';
import type { ApiClient } from './api-client.ts';
import { ACTIVITY_EVENT, CONNECTED_EVENT, COUNTS_EVENT } from './constants.ts';
import type { EntityDefinition } from './entity.ts';
import type { CachedRow, OutboxDatabase } from './outbox.ts';
import type { OutboxEntry } from './types.ts';

/** Stands at the head of a batch whose entity's stored rows are to be replaced. */
const MUST_REFETCH: Message<Record<string, unknown>> = { headers: { control: 'must-refetch' } };
/** A batch that could not be stored is read again after this pause (a broken store is not hammered). */
const REFETCH_AFTER_FAILURE_MS = 1_000;

const camelCase = (key: string) => key.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());

/** A shape row (snake_case columns) as the API's entity JSON (camelCase). */
export function entityFromShapeRow(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(row).map(([key, value]) => [camelCase(key), value]));
}

/** Transaction ids a change message proves applied: its row's, and the PostgreSQL xids. */
export function transactionIdsOf(message: ChangeMessage<Record<string, unknown>>): {
  txIds: string[];
  xids: string[];
} {
  const transactions = message.value.transactions;
  const txIds =
    typeof transactions === 'object' && transactions !== null
      ? Object.values(transactions).filter((value): value is string => typeof value === 'string')
      : [];
  const xids = (message.headers.txids ?? []).map(String);
  return { txIds, xids };
}

/** What one stored batch changed, so the tab can show it without reading the database again. */
export interface BatchEffect {
  entityType: string;
  /** Something was written (rows, confirmations): the transaction raised a change event. */
  wrote: boolean;
  /** The rows were cleared (`must-refetch`): read everything again. */
  refetched: boolean;
  rows: Map<string, Record<string, unknown> | null>;
  confirmed: number[];
  settledAt: number;
}

/**
 * What this tab knows of a transaction id: the seq of its outbox entry while the stream may
 * still confirm it, `settled` when it can no longer be (confirmed, failed, in conflict: an
 * entry keeps its id until `keepMine` gives it a new one), nothing when it does not know it.
 */
export type KnownTransaction = (txId: string) => number | 'settled' | undefined;

/**
 * Writes one batch of shape messages and confirms what they prove applied, atomically. The
 * entries to confirm are found by what the tab knows (its outbox in memory); only ids it does
 * not know are looked up in the database.
 */
export async function applyShapeBatch(
  db: OutboxDatabase,
  organization: string,
  entityType: string,
  messages: readonly Message<Record<string, unknown>>[],
  known: { transaction: KnownTransaction; unconfirmedByXid: () => ReadonlyMap<string, number> },
): Promise<BatchEffect> {
  return db.transaction('rw', db.rows, db.transactions, async () => {
    const effect: BatchEffect = {
      entityType,
      wrote: false,
      refetched: false,
      rows: new Map(),
      confirmed: [],
      settledAt: Date.now(),
    };
    const unknownTxIds = new Set<string>();
    const seqs = new Set<number>();
    const puts: CachedRow[] = [];
    const flushPuts = async () => {
      if (puts.length > 0) await db.rows.bulkPut(puts.splice(0));
    };
    for (const message of messages) {
      if (isControlMessage(message)) {
        if (message.headers.control === 'must-refetch') {
          await flushPuts();
          await db.rows.where('[organization+entityType]').equals([organization, entityType]).delete();
          effect.refetched = true;
        }
        continue;
      }
      if (!isChangeMessage(message)) continue;
      const value = entityFromShapeRow(message.value);
      const id = String(value.id);
      if (message.headers.operation === 'delete') {
        await flushPuts();
        await db.rows.delete([organization, entityType, id]);
        effect.rows.set(id, null);
      } else {
        // an update carries the changed columns: laid over the row as this batch left it
        const existing =
          message.headers.operation === 'update'
            ? (effect.rows.get(id) ?? (await db.rows.get([organization, entityType, id]))?.value)
            : undefined;
        const merged = { ...existing, ...value };
        puts.push({ organization, entityType, id, value: merged });
        effect.rows.set(id, merged);
      }
      const proof = transactionIdsOf(message);
      for (const txId of proof.txIds) {
        const seq = known.transaction(txId);
        if (seq === undefined) unknownTxIds.add(txId);
        else if (seq !== 'settled') seqs.add(seq);
      }
      for (const xid of proof.xids) {
        const seq = known.unconfirmedByXid().get(xid);
        if (seq !== undefined) seqs.add(seq);
      }
    }
    await flushPuts();
    if (unknownTxIds.size > 0)
      for (const entry of await db.transactions
        .where('txId')
        .anyOf([...unknownTxIds])
        .toArray())
        seqs.add(entry.seq);
    const unconfirmed = (await db.transactions.bulkGet([...seqs])).filter(
      (entry): entry is OutboxEntry =>
        entry?.organization === organization && (entry.status === 'pending' || entry.status === 'sent'),
    );
    for (const entry of unconfirmed) effect.confirmed.push(entry.seq);
    if (unconfirmed.length > 0)
      await db.transactions.bulkPut(
        unconfirmed.map((entry) => ({ ...entry, status: 'confirmed', settledAt: effect.settledAt })),
      );
    effect.wrote = effect.refetched || effect.rows.size > 0 || effect.confirmed.length > 0;
    return effect;
  });
}

// the SDK types the stream's events as text; the server sends JSON that the SDK parses
const isActivity = (data: unknown): data is Activity =>
  typeof data === 'object' && data !== null && 'id' in data && 'entityType' in data;
const isConnected = (data: unknown): data is { offset: string } =>
  typeof data === 'object' && data !== null && 'offset' in data && typeof data.offset === 'string';
const isCounts = (data: unknown): data is { counts: Record<string, number> } =>
  typeof data === 'object' && data !== null && 'counts' in data && typeof data.counts === 'object';

export interface LiveStreamOptions {
  db: OutboxDatabase;
  api: ApiClient;
  baseUrl: string;
  organization: string;
  token: string | undefined;
  fetch: typeof fetch;
  unconfirmedByXid: () => ReadonlyMap<string, number>;
  knownTransaction: KnownTransaction;
  /** Cursor of the newest activity this device has: the feed resumes after it. */
  activitiesAfter(): string | undefined;
  /** A shape batch was stored (and its transactions confirmed). */
  onBatch(effect: BatchEffect): void;
  onActivity(activity: Activity): void;
  onCounts(counts: Record<string, number>): void;
}

export interface LiveStreams {
  /** Opens the shape stream of an entity (once). */
  follow(entity: EntityDefinition): void;
  /**
   * The connection is back: a stream waiting out the Electric client's backoff after errors
   * resumes now from where it stopped, instead of seconds later.
   */
  reconnect(): void;
  /**
   * Pauses the activity stream (`false`) or resumes it after the newest activity the device
   * has (`true`): a replay pauses it, so its connection carries writes instead (a browser
   * opens six per host, and each live stream holds one).
   */
  followActivities(follow: boolean): void;
  close(): void;
}

export function startLiveStreams(options: LiveStreamOptions): LiveStreams {
  const controller = new AbortController();
  const entities = new Map<string, EntityDefinition>();
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const fetchClient: typeof fetch = (input, init) =>
    options.fetch(input, { credentials: 'include', ...init });

  /** The activity stream while it runs: aborted to pause it, opened again after the newest activity. */
  let activityStream: AbortController | undefined;
  /** Where the stream stands: its first offset, then its newest activity (a resume starts there). */
  let activityCursor: string | undefined;
  function openActivities(): AbortController {
    const abort = new AbortController();
    controller.signal.addEventListener('abort', () => abort.abort());
    const after = activityCursor ?? options.activitiesAfter();
    void streamActivities({
      client: options.api,
      path: { org: options.organization },
      ...(after ? { query: { after } } : {}),
      signal: abort.signal,
      onSseEvent(event) {
        const data: unknown = event.data;
        if (event.event === CONNECTED_EVENT && isConnected(data)) activityCursor ??= data.offset;
        else if (event.event === ACTIVITY_EVENT && isActivity(data)) {
          activityCursor = data.id;
          options.onActivity(data);
        } else if (event.event === COUNTS_EVENT && isCounts(data)) options.onCounts(data.counts);
      },
      onSseError() {
        // the SDK reconnects with Last-Event-ID and backoff
      },
    })
      .then(async ({ stream }) => {
        for await (const _ of stream) {
          // events are handled in onSseEvent
        }
      })
      .catch(() => {});
    return abort;
  }
  activityStream = openActivities();

  interface Followed {
    stream: ShapeStream<Record<string, unknown>>;
    abort: AbortController;
  }
  const followed = new Map<string, Followed>();
  /** Entities whose stream stopped at a batch it could not store; reopened from the start. */
  const refetching = new Set<string>();

  /**
   * A shape stream of one entity, from the start or resuming where an earlier one stopped.
   * `refetch`: the rows stored for this entity are stale (a batch could not be stored): the
   * first batch of the new stream replaces them, as a server's `must-refetch` does.
   */
  function open(
    entity: EntityDefinition,
    from: { resume: ShapeStream<Record<string, unknown>> } | { refetch: true } | undefined = undefined,
  ): Followed {
    const abort = new AbortController();
    controller.signal.addEventListener('abort', () => abort.abort());
    const resume = from && 'resume' in from ? from.resume : undefined;
    const handle = resume?.shapeHandle;
    let replaceStored = from !== undefined && 'refetch' in from;
    const stream = new ShapeStream<Record<string, unknown>>({
      url: `${options.baseUrl}/api/organizations/${encodeURIComponent(options.organization)}/shapes/${entity.path}`,
      headers,
      fetchClient,
      signal: abort.signal,
      ...(resume && handle ? { offset: resume.lastOffset, handle } : {}),
      // 4xx the client does not retry on its own (401 while signed out, a removed member):
      // keep trying slowly, the outbox keeps working meanwhile
      onError: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5_000));
        return abort.signal.aborted ? undefined : {};
      },
    });
    stream.subscribe(
      async (messages) => {
        if (abort.signal.aborted) return;
        const batch = replaceStored ? [MUST_REFETCH, ...messages] : messages;
        try {
          options.onBatch(
            await applyShapeBatch(options.db, options.organization, entity.name, batch, {
              transaction: options.knownTransaction,
              unconfirmedByXid: options.unconfirmedByXid,
            }),
          );
          replaceStored = false;
        } catch {
          // The stream has moved past this batch, which is not stored: unless the streams are
          // closing (the tab is leaving), read the shape again and replace what is stored. A
          // callback that throws would reach the page as an uncaught error.
          if (abort.signal.aborted) return;
          abort.abort();
          refetching.add(entity.name);
          setTimeout(() => {
            refetching.delete(entity.name);
            if (!controller.signal.aborted) followed.set(entity.name, open(entity, { refetch: true }));
          }, REFETCH_AFTER_FAILURE_MS);
        }
      },
      () => {},
    );
    return { stream, abort };
  }

  return {
    follow(entity) {
      if (followed.has(entity.name) || controller.signal.aborted) return;
      followed.set(entity.name, open(entity));
      entities.set(entity.name, entity);
    },
    reconnect() {
      for (const [name, current] of followed) {
        const entity = entities.get(name);
        if (!entity || refetching.has(name) || current.stream.isConnected() || controller.signal.aborted)
          continue;
        current.abort.abort();
        followed.set(name, open(entity, { resume: current.stream }));
      }
    },
    followActivities(follow) {
      if (controller.signal.aborted || follow === (activityStream !== undefined)) return;
      activityStream?.abort();
      activityStream = follow ? openActivities() : undefined;
    },
    close() {
      controller.abort();
    },
  };
}

/**
 * The leader's live connections. Each entity's shape stream (the official Electric client)
 * writes the rows it delivers to the database and, in the same database transaction, confirms
 * the outbox entries whose transaction ids it carries, so every tab sees both at once. The
 * activity stream (SSE, through the SDK) feeds the activity list and counts.
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
import { ACTIVITY_EVENT, COUNTS_EVENT } from './constants.ts';
import type { EntityDefinition } from './entity.ts';
import type { OutboxDatabase } from './outbox.ts';

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

/** Writes one batch of shape messages and confirms what they prove applied, atomically. */
export async function applyShapeBatch(
  db: OutboxDatabase,
  organization: string,
  entityType: string,
  messages: readonly Message<Record<string, unknown>>[],
  unconfirmedByXid: () => ReadonlyMap<string, number>,
): Promise<void> {
  await db.transaction('rw', db.rows, db.transactions, async () => {
    const txIds = new Set<string>();
    const seqs = new Set<number>();
    for (const message of messages) {
      if (isControlMessage(message)) {
        if (message.headers.control === 'must-refetch')
          await db.rows.where('[organization+entityType]').equals([organization, entityType]).delete();
        continue;
      }
      if (!isChangeMessage(message)) continue;
      const value = entityFromShapeRow(message.value);
      const id = String(value.id);
      const key: [string, string, string] = [organization, entityType, id];
      if (message.headers.operation === 'delete') await db.rows.delete(key);
      else {
        const existing = message.headers.operation === 'update' ? await db.rows.get(key) : undefined;
        await db.rows.put({ organization, entityType, id, value: { ...existing?.value, ...value } });
      }
      const proof = transactionIdsOf(message);
      for (const txId of proof.txIds) txIds.add(txId);
      for (const xid of proof.xids) {
        const seq = unconfirmedByXid().get(xid);
        if (seq !== undefined) seqs.add(seq);
      }
    }
    const now = Date.now();
    const confirmed = await db.transactions
      .where('txId')
      .anyOf([...txIds])
      .toArray();
    for (const entry of confirmed) seqs.add(entry.seq);
    for (const seq of seqs) {
      await db.transactions
        .where('seq')
        .equals(seq)
        .filter(
          (entry) =>
            entry.organization === organization && (entry.status === 'pending' || entry.status === 'sent'),
        )
        .modify({ status: 'confirmed', settledAt: now });
    }
  });
}

// the SDK types the stream's events as text; the server sends JSON that the SDK parses
const isActivity = (data: unknown): data is Activity =>
  typeof data === 'object' && data !== null && 'id' in data && 'entityType' in data;
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
  /** Cursor of the newest activity this device has: the feed resumes after it. */
  activitiesAfter: string | undefined;
  onActivity(activity: Activity): void;
  onCounts(counts: Record<string, number>): void;
}

export interface LiveStreams {
  /** Opens the shape stream of an entity (once). */
  follow(entity: EntityDefinition): void;
  close(): void;
}

export function startLiveStreams(options: LiveStreamOptions): LiveStreams {
  const controller = new AbortController();
  const followed = new Set<string>();
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const fetchClient: typeof fetch = (input, init) =>
    options.fetch(input, { credentials: 'include', ...init });

  void streamActivities({
    client: options.api,
    path: { org: options.organization },
    ...(options.activitiesAfter ? { query: { after: options.activitiesAfter } } : {}),
    signal: controller.signal,
    onSseEvent(event) {
      const data: unknown = event.data;
      if (event.event === ACTIVITY_EVENT && isActivity(data)) options.onActivity(data);
      else if (event.event === COUNTS_EVENT && isCounts(data)) options.onCounts(data.counts);
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

  return {
    follow(entity) {
      if (followed.has(entity.name) || controller.signal.aborted) return;
      followed.add(entity.name);
      const stream = new ShapeStream<Record<string, unknown>>({
        url: `${options.baseUrl}/api/organizations/${encodeURIComponent(options.organization)}/shapes/${entity.path}`,
        headers,
        fetchClient,
        signal: controller.signal,
        // 4xx the client does not retry on its own (401 while signed out, a removed member):
        // keep trying slowly, the outbox keeps working meanwhile
        onError: async () => {
          await new Promise((resolve) => setTimeout(resolve, 5_000));
          return controller.signal.aborted ? undefined : {};
        },
      });
      stream.subscribe(
        (messages) =>
          applyShapeBatch(options.db, options.organization, entity.name, messages, options.unconfirmedByXid),
        () => {},
      );
    },
    close() {
      controller.abort();
    },
  };
}

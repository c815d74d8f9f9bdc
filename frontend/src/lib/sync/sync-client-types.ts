/** The public face of one sync client (one signed-in device, one organization). */
import type { QueryClient } from '@tanstack/query-core';
import type { ApiClient } from './api-client.ts';
import type { EntityDefinition } from './entity.ts';
import type { SyncEnvironment } from './environment.ts';
import type { OutboxEntry, SyncedItem, SyncSnapshot, TrackedEntity, TransactionStatus } from './types.ts';

export interface SyncClientOptions {
  /** Origin of the API, e.g. `http://localhost:3000`; `''` for the page's own origin. */
  baseUrl: string;
  /** Organization id or slug. */
  organization: string;
  /** The device's client id (`await deviceClientId()`); loaded from the database when absent. */
  clientId?: string;
  /** Bearer token; without it requests carry the session cookie. */
  token?: string;
  queryClient: QueryClient;
  /**
   * Entities whose shape streams the leader opens from the start (others open when first used).
   * A tab drains only the entity types it knows, so list every entity the app writes.
   */
  entities?: readonly EntityDefinition<TrackedEntity, object, object>[];
  /** IndexedDB database of the outbox; one per device (default `sync`). */
  databaseName?: string;
  /** Web Locks, BroadcastChannel, online state and timers; the browser's by default. */
  environment?: Partial<SyncEnvironment>;
  /**
   * Writes in flight at once (default 4; a browser allows six HTTP/1.1 connections per host and
   * the leader's streams hold some). Writes of one entity, and anything after a create, wait.
   */
  concurrency?: number;
  /** Abort a request after this long and retry it (default 10 s). */
  requestTimeoutMs?: number;
  /** A `sent` transaction not seen on the stream after this long is settled by the status endpoint (default 3 s). */
  confirmAfterMs?: number;
  /** Most recent activities kept for the feed (default 100). */
  activityLimit?: number;
}

export interface WriteOptions {
  /**
   * The version the person's edit started from (`transactions.update ?? insert` of the row they
   * opened). Default: the newest version this client knows (the overlay's).
   */
  expectedVersion?: string | null;
}

export interface SyncClient {
  readonly organization: string;
  /** The device's client id (`options.clientId`, or loaded from the database: '' until `ready`). */
  readonly clientId: string;
  /** Resolves when the outbox database is open and the client id known. */
  readonly ready: Promise<void>;
  readonly tabId: string;
  /** The generated SDK's client, configured with the session and `X-Client-Id`. */
  readonly api: ApiClient;

  /** TanStack Query options of an entity's live list (server rows + optimistic overlay). */
  queryOptions<T extends TrackedEntity>(
    entity: EntityDefinition<T, object, object>,
  ): {
    queryKey: readonly unknown[];
    queryFn: () => Promise<SyncedItem<T>[]>;
    staleTime: number;
    structuralSharing: false;
  };
  /** The same list, read synchronously (after the first `queryFn` or stream batch). */
  items<T extends TrackedEntity>(entity: EntityDefinition<T, object, object>): SyncedItem<T>[];

  /** Queues a create; resolves once it is in the outbox. `values.id` may be chosen by the caller. */
  create<T extends TrackedEntity, C extends object>(
    entity: EntityDefinition<T, C, object>,
    values: C & { id?: string },
  ): Promise<{ txId: string; id: string }>;
  update<T extends TrackedEntity, U extends object>(
    entity: EntityDefinition<T, object, U>,
    id: string,
    patch: U,
    options?: WriteOptions,
  ): Promise<{ txId: string }>;
  remove(entity: EntityDefinition, id: string, options?: WriteOptions): Promise<{ txId: string }>;
  /** Queues the server-side undo of a transaction, as a transaction of its own. */
  undo(txId: string): Promise<{ txId: string }>;

  /** Re-sends the person's values of a conflicted transaction against the server's version. */
  keepMine(txId: string): Promise<{ txId: string }>;
  /** Drops the local change of a conflicted transaction; the server's row stays. */
  takeTheirs(txId: string): Promise<void>;
  /** Removes a failed transaction (and what cascaded from it) from view. */
  dismiss(txId: string): Promise<void>;

  transaction(txId: string): OutboxEntry | undefined;
  /** Resolves when the transaction reaches one of `statuses` (rejects after `timeoutMs`). */
  waitFor(txId: string, statuses: readonly TransactionStatus[], timeoutMs?: number): Promise<OutboxEntry>;

  /** For `useSyncExternalStore`: the snapshot changes identity on every change. */
  subscribe(listener: () => void): () => void;
  getSnapshot(): SyncSnapshot;

  /**
   * Sends what is queued now, including writes waiting out a backoff after a network error (the
   * drainer also wakes on its timer, new entries, `online` and the page becoming visible).
   */
  drain(): void;
  /** Stops the drainer, streams and timers, releases leadership and closes the database. */
  close(): Promise<void>;
}

/** The vocabulary of the sync library: what the outbox stores and what the UI reads. */
import type { Activity } from '../../api.gen/types.gen.ts';

/**
 * pending   queued in the outbox, no answer from the server yet (offline, retrying, or waiting
 *           behind an earlier write of the same entity)
 * sent      the server applied it; waiting to see it come back on the shape stream
 * confirmed seen on the shape stream (or settled by the transaction status endpoint)
 * failed    rejected for good (a 4xx other than a conflict); the optimistic change is rolled back
 * conflict  409: the entity changed or was deleted on the server; a person decides
 */
export type TransactionStatus = 'pending' | 'sent' | 'confirmed' | 'failed' | 'conflict';

export type MutationAction = 'create' | 'update' | 'delete' | 'undo';

/** The write an undo stands for (see undo-inverse.ts). */
export type UndoInverse =
  | { action: 'update'; values: Record<string, unknown> }
  | { action: 'delete' }
  | { action: 'restore' };

/** Why a transaction is `failed` or `conflict`, or why its last attempt did not get through. */
export interface SyncError {
  /** The API's error code (`VALIDATION_FAILED`, `TRANSACTION_CONFLICT`, ...), or `NETWORK` / `TIMEOUT` / `CASCADE`. */
  code: string;
  message: string;
  /** HTTP status when the server answered. */
  status?: number;
}

/** One mutation: a row of the outbox, written before any request is sent. */
export interface OutboxEntry {
  /** Monotonic sequence across every tab of this device: the replay order. */
  seq: number;
  txId: string;
  /** Organization id or slug the mutation belongs to. */
  organization: string;
  /** Entity type as the API names it in activities (`page`, `attachment`). */
  entityType: string;
  entityId: string;
  action: MutationAction;
  /** Body of the request (create: every field; update: the changed fields; delete: `{}`). */
  payload: Record<string, unknown>;
  /** `X-Expected-Transaction-Id`: the entity's version this change was made against. */
  expectedVersion: string | null;
  status: TransactionStatus;
  /** Attempts that did not get a definite answer (network error, timeout, 5xx). */
  retries: number;
  /** Epoch ms before which the drainer does not try again. */
  nextAttemptAt: number;
  lastError: SyncError | null;
  /** The row as the server has it, from a 409 (conflict) or a successful answer. */
  serverVersion: Record<string, unknown> | null;
  /** PostgreSQL xid of the write (`X-Txid`), matched against shape messages' `txids`. */
  serverTxid: string | null;
  /** For `undo`: the transaction it reverts. */
  undoOf: string | null;
  /** For an `undo` in conflict: the write it meant, from the undone transaction's activity. */
  inverse?: UndoInverse | null;
  /** For `keepMine`: the conflicted transaction this one re-sends. */
  replaces: string | null;
  /** For a write failed along with its entity's create: that create's transaction id. */
  cascadedFrom: string | null;
  clientId: string;
  tabId: string;
  createdAt: number;
  sentAt: number | null;
  settledAt: number | null;
}

/** A tracked row as the API returns it (camelCase, with its transaction ids). */
export interface TrackedEntity {
  id: string;
  transactions: { insert: string | null; update: string | null; delete: string | null };
  deletedAt?: string | null;
}

/** An entity as the UI shows it: the server row with the outbox's unconfirmed changes laid over. */
export interface SyncedItem<T> {
  id: string;
  value: T;
  /** Status of the newest transaction of this entity still in view; `confirmed` when none. */
  status: TransactionStatus;
  /** That transaction's id; null for a row no local transaction touched. */
  txId: string | null;
}

/** A 409 waiting for a person: their values and the server's, side by side. */
export interface Conflict {
  entry: OutboxEntry;
  /** The entity with this transaction's change applied (what the person meant). */
  mine: Record<string, unknown> | null;
  /** The entity as the server has it now; null when it was deleted and not returned. */
  theirs: Record<string, unknown> | null;
}

/** A rejected write, kept until dismissed. `cascadedFrom` names the failed create that took it along. */
export interface FailedWrite {
  entry: OutboxEntry;
  reason: string;
  cascadedFrom: string | null;
}

export type { Activity };

/** Everything the UI observes besides entity lists: one immutable snapshot per change. */
export interface SyncSnapshot {
  /** The outbox has been read: until then `outbox`, `queued`, `conflicts` and `failed` are not known yet. */
  ready: boolean;
  /** The browser has a connection and the API answered the last request (or none failed). */
  online: boolean;
  /** This tab holds the leader lock: it runs the drainer and the live connections. */
  leader: boolean;
  /** Every transaction of this organization still in the outbox, oldest first. */
  outbox: readonly OutboxEntry[];
  /** Transactions not yet acknowledged by the server (`pending`): the offline banner's count. */
  queued: number;
  conflicts: readonly Conflict[];
  failed: readonly FailedWrite[];
  /** The live activity feed, newest first (at most `activityLimit`). */
  activities: readonly Activity[];
  /** Live entity counts, e.g. `{ page: 12, attachment: 3 }`. */
  counts: Readonly<Record<string, number>>;
}

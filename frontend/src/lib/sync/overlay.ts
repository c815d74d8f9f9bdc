/**
 * Optimistic state, as pure functions: the server rows with the outbox's unconfirmed changes
 * laid over them in sequence order. Recomputed whenever either side changes; a transaction is
 * confirmed in the same database transaction that stores the row the stream delivered, so the
 * overlay and the server row swap without a flicker.
 */
import type {
  Conflict,
  FailedWrite,
  OutboxEntry,
  SyncedItem,
  TrackedEntity,
  TransactionStatus,
} from './types.ts';
import { intendedVersion } from './undo-inverse.ts';

/** Entries whose change is still laid over the server row. */
const OVERLAID: ReadonlySet<TransactionStatus> = new Set(['pending', 'sent', 'conflict']);

function applyEntry(
  current: Record<string, unknown> | undefined,
  entry: OutboxEntry,
): Record<string, unknown> | undefined {
  switch (entry.action) {
    case 'create':
      return {
        deletedAt: null,
        ...current,
        ...entry.payload,
        id: entry.entityId,
        transactions: { insert: entry.txId, update: null, delete: null },
      };
    case 'update':
      if (!current) return undefined;
      return {
        ...current,
        ...entry.payload,
        transactions: { ...(current.transactions as object), update: entry.txId },
      };
    case 'delete':
      return undefined;
    case 'undo':
      // the inverse is computed by the server; the row changes when the stream brings it
      return current;
  }
}

/** Equal fields, nested objects (an entity's `transactions`) compared one level down. */
function sameFields(a: object, b: object, nested = true): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    const left: unknown = Reflect.get(a, key);
    const right: unknown = Reflect.get(b, key);
    if (left === right) continue;
    if (
      !nested ||
      typeof left !== 'object' ||
      typeof right !== 'object' ||
      left === null ||
      right === null ||
      Array.isArray(left) ||
      Array.isArray(right) ||
      !sameFields(left, right, false)
    )
      return false;
  }
  return true;
}

/**
 * The items of one entity type: `rows` from the server, `entries` this entity type's outbox
 * entries in sequence order. An item's status is its newest entry's that is not confirmed
 * (failed ones until dismissed), else `confirmed`. An item equal to one of `previous` (an equal
 * value, the same status and transaction) is that item, the items of `previous` keep their
 * places (new ones follow), and a list equal to `previous` is `previous` itself, so a view
 * redraws only what changed: a pending change laid over its row again, or a re-read of the
 * database, makes no new item.
 */
export function overlay<T extends TrackedEntity>(
  rows: ReadonlyMap<string, Record<string, unknown>>,
  entries: readonly OutboxEntry[],
  previous: SyncedItem<T>[] = [],
): SyncedItem<T>[] {
  const values = new Map<string, Record<string, unknown> | undefined>(rows);
  const latest = new Map<string, OutboxEntry>();
  for (const entry of entries) {
    const previous = latest.get(entry.entityId);
    if (entry.status !== 'confirmed' || !previous || previous.status === 'confirmed')
      latest.set(entry.entityId, entry);
    if (OVERLAID.has(entry.status)) values.set(entry.entityId, applyEntry(values.get(entry.entityId), entry));
  }
  const items: SyncedItem<T>[] = [];
  let unchanged = true;
  const add = (id: string, value: Record<string, unknown> | undefined, known: SyncedItem<T> | undefined) => {
    if (!value || value.deletedAt) return;
    const entry = latest.get(id);
    const status = entry?.status ?? 'confirmed';
    const txId = entry?.txId ?? null;
    const item =
      known &&
      known.status === status &&
      known.txId === txId &&
      (known.value === value || sameFields(known.value, value))
        ? known
        : { id, value: value as T, status, txId };
    unchanged &&= item === previous[items.length];
    items.push(item);
  };
  for (const known of previous) {
    add(known.id, values.get(known.id), known);
    values.delete(known.id);
  }
  for (const [id, value] of values) add(id, value, undefined);
  return unchanged && items.length === previous.length ? previous : items;
}

/** Conflicts with the person's version (their change over the server's row) and the server's. */
export function conflictsOf(
  entries: readonly OutboxEntry[],
  rowOf: (entry: OutboxEntry) => Record<string, unknown> | undefined,
): Conflict[] {
  return entries
    .filter((entry) => entry.status === 'conflict')
    .map((entry) => {
      const theirs = entry.serverVersion ?? rowOf(entry) ?? null;
      const mine =
        entry.action === 'undo'
          ? intendedVersion(entry.inverse, theirs)
          : entry.action === 'delete'
            ? null
            : { ...(theirs ?? {}), ...entry.payload };
      return { entry, mine, theirs };
    });
}

export function failedWritesOf(entries: readonly OutboxEntry[]): FailedWrite[] {
  return entries
    .filter((entry) => entry.status === 'failed')
    .map((entry) => ({
      entry,
      reason: entry.lastError?.message ?? 'rejected',
      cascadedFrom: entry.cascadedFrom,
    }));
}

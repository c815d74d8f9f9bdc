/**
 * The outbox: one IndexedDB row per transaction, written before any request is sent, shared
 * by every tab of the device. Its schema is versioned with Dexie so that a new release opens
 * the database of an old one with the changes it queued intact: add a `version(n + 1)` with
 * the new stores (and an `upgrade` for rows that need rewriting); never edit an old version.
 */
import { Dexie, type EntityTable, type Table } from 'dexie';
import { CASCADE_ERROR } from './constants.ts';
import { createClientId } from './transaction-id.ts';
import type { OutboxEntry } from './types.ts';

export const DEFAULT_DATABASE_NAME = 'sync';

/** The last known server row of an entity, so a reload shows data before the network answers. */
export interface CachedRow {
  organization: string;
  entityType: string;
  id: string;
  value: Record<string, unknown>;
}

interface MetaRow {
  key: string;
  value: string;
}

export interface StorageEnvironment {
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
}

export class OutboxDatabase extends Dexie {
  transactions!: EntityTable<OutboxEntry, 'seq'>;
  meta!: EntityTable<MetaRow, 'key'>;
  rows!: Table<CachedRow, [string, string, string]>;

  constructor(name: string, storage?: StorageEnvironment) {
    super(name, storage ? { indexedDB: storage.indexedDB, IDBKeyRange: storage.IDBKeyRange } : {});
    // v1: the outbox and the device's client id
    this.version(1).stores({
      transactions: '++seq, &txId, organization, [organization+entityType+entityId]',
      meta: 'key',
    });
    // v2: the last known server rows, read before the shape stream answers
    this.version(2).stores({
      rows: '[organization+entityType+id], [organization+entityType]',
    });
    // v3: entries by status, so the drainer reads what it may send, not the whole history
    this.version(3).stores({
      transactions: '++seq, &txId, organization, [organization+entityType+entityId], [organization+status]',
    });
  }
}

const CLIENT_ID_KEY = 'clientId';

/** The device's client id: made once, then read from the database by every tab. */
export async function loadClientId(db: OutboxDatabase): Promise<string> {
  return db.transaction('rw', db.meta, async () => {
    const existing = await db.meta.get(CLIENT_ID_KEY);
    if (existing) return existing.value;
    const value = createClientId();
    await db.meta.put({ key: CLIENT_ID_KEY, value });
    return value;
  });
}

/** The device's persistent client id (for the API client used before an organization is open). */
export async function deviceClientId(
  options: { databaseName?: string; storage?: StorageEnvironment } = {},
): Promise<string> {
  const db = new OutboxDatabase(options.databaseName ?? DEFAULT_DATABASE_NAME, options.storage);
  try {
    return await loadClientId(db);
  } finally {
    db.close();
  }
}

/** Deletes this device's outbox, cached rows and client id (sign-out on a shared device). */
export async function deleteLocalData(
  options: { databaseName?: string; storage?: StorageEnvironment } = {},
): Promise<void> {
  await new OutboxDatabase(options.databaseName ?? DEFAULT_DATABASE_NAME, options.storage).delete();
}

/** Confirmed transactions kept per organization for the debug view; older ones are deleted. */
export const CONFIRMED_KEPT = 200;

/** Deletes the oldest confirmed transactions beyond the newest `keep`. */
export async function pruneConfirmed(
  db: OutboxDatabase,
  organization: string,
  keep = CONFIRMED_KEPT,
): Promise<void> {
  const confirmed = await db.transactions
    .where('[organization+status]')
    .equals([organization, 'confirmed'])
    .primaryKeys();
  if (confirmed.length <= keep) return;
  const sorted = confirmed.sort((a, b) => a - b);
  await db.transactions.bulkDelete(sorted.slice(0, sorted.length - keep));
}

export const entityKey = (entry: Pick<OutboxEntry, 'entityType' | 'entityId'>) =>
  `${entry.entityType}/${entry.entityId}`;

/** What a write of an entity whose create failed becomes: failed with it, naming it. */
export function failedWithCreate(
  create: Pick<OutboxEntry, 'txId'>,
  message: string,
): Pick<OutboxEntry, 'status' | 'settledAt' | 'cascadedFrom' | 'lastError'> {
  return {
    status: 'failed',
    settledAt: Date.now(),
    cascadedFrom: create.txId,
    lastError: { code: CASCADE_ERROR, message },
  };
}

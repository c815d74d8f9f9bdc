/**
 * The registry of tracked (product) tables: the one list the API's tracked-entity core, the
 * CDC worker and the shape endpoints read. Adding a product entity means a table in schema.ts
 * and one entry here (plus its module's field schemas).
 */
import { getTableConfig } from 'drizzle-orm/pg-core';
import { attachments, pages } from './schema.ts';

export interface TrackedTable {
  /** Singular entity type used in activities and counts: `page` → `page.created`. */
  entityType: string;
  table: typeof pages | typeof attachments;
  /** PostgreSQL table name (as it appears in the WAL). */
  tableName: string;
  /**
   * Whether activities keep the changed columns' previous values (the CDC worker honours it).
   * Undoing an update needs them: without, its undo answers 409 PREVIOUS_VALUES_NOT_KEPT.
   */
  keepPreviousValues: boolean;
}

interface TrackedOptions {
  /** Default true. */
  keepPreviousValues?: boolean;
}

function tracked(
  entityType: string,
  table: TrackedTable['table'],
  options: TrackedOptions = {},
): TrackedTable {
  const { keepPreviousValues = true } = options;
  return { entityType, table, tableName: getTableConfig(table).name, keepPreviousValues };
}

export const trackedTables: readonly TrackedTable[] = [
  tracked('page', pages, { keepPreviousValues: true }),
  tracked('attachment', attachments, { keepPreviousValues: true }),
];

/** Columns the server maintains on every tracked row; they never count as a changed key. */
export const BOOKKEEPING_COLUMNS = [
  'transactions',
  'last_client_id',
  'modified_at',
  'modified_by',
  'created_at',
  'created_by',
] as const;

export function trackedTableByName(tableName: string): TrackedTable | undefined {
  return trackedTables.find((t) => t.tableName === tableName);
}

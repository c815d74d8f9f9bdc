/**
 * The registry of tracked (product) tables: the one list the API's tracked-entity core, the
 * CDC worker and the shape endpoints read. Adding a product entity means a table in schema.ts
 * and one entry here (plus its module's field schemas).
 */
import type { BuildColumns } from 'drizzle-orm';
import { getTableConfig, type PgTableWithColumns } from 'drizzle-orm/pg-core';
import { attachments, pages, type TrackedColumnBuilders } from './schema.ts';

/**
 * Any table that spreads `trackedColumns()`, whatever its own columns: what the tracked-entity
 * core, the CDC worker and the shapes read of every tracked table.
 */
export type TrackedPgTable = PgTableWithColumns<{
  name: string;
  schema: undefined;
  dialect: 'pg';
  columns: BuildColumns<string, TrackedColumnBuilders, 'pg'>;
}>;

/** A tracked row as drizzle reads it: the shared columns (the entity's own come along untyped). */
export type TrackedRow = TrackedPgTable['$inferSelect'];

export interface TrackedTable<Table extends TrackedPgTable = TrackedPgTable> {
  /** Singular entity type used in activities and counts: `page` → `page.created`. */
  entityType: string;
  table: Table;
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

function tracked<Table extends TrackedPgTable>(
  entityType: string,
  table: Table,
  options: TrackedOptions = {},
): TrackedTable<Table> {
  const { keepPreviousValues = true } = options;
  return { entityType, table, tableName: getTableConfig(table).name, keepPreviousValues };
}

export const trackedPages = tracked('page', pages, { keepPreviousValues: true });
export const trackedAttachments = tracked('attachment', attachments, { keepPreviousValues: true });

export const trackedTables: readonly TrackedTable[] = [trackedPages, trackedAttachments];

/** Columns the server maintains on every tracked row; they never count as a changed key. */
export const BOOKKEEPING_COLUMNS = [
  'transactions',
  'last_client_id',
  'modified_at',
  'modified_by',
  'created_at',
  'created_by',
] as const;

/**
 * Tracked writes, once for every product entity. Each write is ONE SQL statement:
 *
 *   WITH claim   AS (INSERT INTO applied_transactions … ON CONFLICT DO NOTHING)  ← idempotency
 *        written AS (INSERT/UPDATE the row … WHERE <guard> AND EXISTS (claim))   ← stamped row
 *   SELECT …, CASE WHEN claimed AND nothing written THEN sync_reject() END
 *
 *   claimed + written      → 201/200, committed together
 *   not claimed            → the id was applied before: answer the row as it is now (hit),
 *                            or 409 TRANSACTION_ID_REUSED if it was another mutation
 *   claimed, not written   → sync_reject() aborts the statement, so the claim never commits;
 *                            then 404 / 409 ENTITY_DELETED / 409 TRANSACTION_CONFLICT
 *
 * The claim's primary key serialises concurrent duplicates: a second insert of the same id
 * waits for the first statement and then sees the conflict. The guard (id, organization, not
 * deleted, expected version) sits in the UPDATE's WHERE, which PostgreSQL re-checks against the
 * row version it waited for, so of N writers expecting one version exactly one wins. An undo
 * (tracked-undo.ts) is such a write too; its guard is "the row's latest transaction is still the
 * one undone" instead of the expected version, re-checked the same way. Nothing
 * here depends on the CDC worker having caught up. One statement is one round trip, and one
 * query object for the driver to build: names come from fragments built once (`namesOf`),
 * everything else is a bound value, so a statement's text is the same for every write of a
 * column set and stays prepared. The tracked path costs about what a plain insert costs (see
 * `npm run bench write`).
 */

import { memoized } from '@sync/db/memo';
import { errorCode, SQLSTATE } from '@sync/db/postgres-errors';
import type { RowTransactions } from '@sync/db/schema';
import type { TrackedRow } from '@sync/db/tracked-tables';
import { and, asc, sql as drizzleSql, eq, getTableColumns, isNull } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { nanoid } from 'nanoid';
import type postgres from 'postgres';
import type { Db } from '../../db/client.ts';
import { AppError } from '../errors.ts';
import { ERROR_CODE } from '../protocol.ts';
import type { TrackedEntityDefinition } from './tracked-entity.ts';
import type { TransactionHeaders } from './transaction-headers.ts';

type Action = 'create' | 'update' | 'delete';

export interface WriteContext extends TransactionHeaders {
  organizationId: string;
  userId: string;
}

export interface WriteResult {
  entity: TrackedRow;
  /** True when the transaction id had already been applied and nothing was written. */
  replayed: boolean;
  /** The writing PostgreSQL transaction's 32-bit xid, as shape messages carry it in `txids`; absent on a replay. */
  txid?: number;
}

/** Selected by every write statement: the xid the CDC worker will see for this write. */
const txidOf = (raw: Record<string, unknown>) => Number(raw.sync_txid);

/**
 * Every tracked table shares the bookkeeping columns of `trackedColumns()` in schema.ts; the
 * core touches only those by name and carries the entity's own fields along as they are.
 */
const columnsOf = (definition: TrackedEntityDefinition): Record<string, PgColumn> =>
  getTableColumns(definition.tracked.table);

/** Raw rows → the same objects drizzle returns (camelCase properties, Dates, numbers). */
const rowReaders = new WeakMap<object, (raw: Record<string, unknown>) => TrackedRow>();
function readRow(definition: TrackedEntityDefinition, raw: Record<string, unknown>): TrackedRow {
  const reader = memoized(rowReaders, definition, () => {
    const columns = Object.entries(columnsOf(definition));
    // built from every column of the table, so it has each one TrackedRow names
    return (r: Record<string, unknown>) =>
      Object.fromEntries(
        columns.map(([property, column]) => {
          const value = r[column.name];
          return [property, value === null || value === undefined ? null : column.mapFromDriverValue(value)];
        }),
      ) as TrackedRow;
  });
  return reader(raw);
}

/** Input fields (camelCase properties) → column names, for the jsonb record the statement reads. */
function toColumns(
  definition: TrackedEntityDefinition,
  fields: Record<string, unknown>,
): Record<string, unknown> {
  const columns = columnsOf(definition);
  const out: Record<string, unknown> = {};
  for (const [property, value] of Object.entries(fields)) {
    const column = columns[property];
    if (column && value !== undefined) out[column.name] = value;
  }
  return out;
}

/** drizzle's postgres.js client: it parses dates as drizzle's column mappers expect. */
function rawSql(db: Db): postgres.Sql {
  return db.$client;
}

/**
 * A table's name and column lists as postgres.js values, built once per client and column set.
 * A fragment (sql`...`) is a whole query object, a promise with its closures, about 5 µs of CPU
 * with its garbage collection: built per request (a create made 15 driver calls, an update 12)
 * they about doubled the CPU of a write outside HTTP. Nothing here holds a value, so one object
 * serves every request; a write builds one query, its statement.
 */
interface TableNames {
  table: postgres.Helper<string>;
  /** `"a" , "b"`; `sql(names)` would pick its meaning from the nearest SQL keyword before it. */
  columns(names: string[]): postgres.PendingQuery<postgres.Row[]>[];
}

const tableNamesByClient = new WeakMap<postgres.Sql, Map<string, TableNames>>();

function namesOf(sql: postgres.Sql, tableName: string): TableNames {
  const byTable = memoized(tableNamesByClient, sql, () => new Map());
  return memoized(byTable, tableName, () => {
    // keyed by the written columns, which are the entity's own (validated) fields plus bookkeeping
    const lists = new Map<string, postgres.PendingQuery<postgres.Row[]>[]>();
    return {
      table: sql(tableName),
      columns: (columnNames) =>
        memoized(lists, columnNames.join(','), () =>
          columnNames.map((name, i) => (i === 0 ? sql`${sql(name)}` : sql`, ${sql(name)}`)),
        ),
    };
  });
}

/** A transaction id seen before: the same mutation answers the row as it is now; another is an error. */
async function answerReplay(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  action: Action,
  entityId: string | undefined,
): Promise<WriteResult> {
  const sql = rawSql(db);
  const [found] = await sql`
    select a.organization_id as applied_organization_id, a.entity_type as applied_entity_type,
           a.entity_id as applied_entity_id, a.action as applied_action, t.*
    from applied_transactions a
    left join ${namesOf(sql, definition.tracked.tableName).table} t
      on t.id = a.entity_id and t.organization_id = a.organization_id
    where a.transaction_id = ${context.transactionId}`;
  const sameMutation =
    found !== undefined &&
    found.applied_organization_id === context.organizationId &&
    found.applied_entity_type === definition.tracked.entityType &&
    found.applied_action === action &&
    (entityId === undefined || found.applied_entity_id === entityId);
  if (!found || !sameMutation) {
    throw new AppError(
      409,
      ERROR_CODE.transactionIdReused,
      'This transaction id was already used for a different entity or action',
    );
  }
  if (found.id === null) throw AppError.notFound(definition.singular);
  return { entity: readRow(definition, found), replayed: true };
}

/**
 * The entity's reference check (an attachment's page) runs before the write statement. A replay
 * was checked when it was first applied, and its page may be gone since: answer it as the replay
 * it is instead of judging it again.
 */
async function checkReferencesUnlessReplay(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  action: Action,
  entityId: string | undefined,
  fields: Record<string, unknown>,
): Promise<WriteResult | undefined> {
  try {
    await definition.checkReferences?.(db, context.organizationId, fields);
    return undefined;
  } catch (err) {
    const [applied] = await rawSql(db)`
      select 1 from applied_transactions where transaction_id = ${context.transactionId}`;
    if (applied) return answerReplay(db, definition, context, action, entityId);
    throw err;
  }
}

export async function createTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  input: Record<string, unknown> & { id?: string | undefined },
): Promise<WriteResult> {
  const { id: requestedId, ...fields } = input;
  const id = requestedId ?? nanoid(16);
  const replay = await checkReferencesUnlessReplay(db, definition, context, 'create', requestedId, fields);
  if (replay) return replay;
  const record = {
    ...toColumns(definition, fields),
    id,
    organization_id: context.organizationId,
    created_by: context.userId,
    transactions: { insert: context.transactionId, update: null, delete: null },
    last_client_id: context.clientId,
  };
  const sql = rawSql(db);
  const { table, columns: columnList } = namesOf(sql, definition.tracked.tableName);
  const columns = columnList(Object.keys(record));
  // An existing id makes the INSERT fail with a unique violation (ID_TAKEN), which aborts the
  // whole statement, claim included. The claim CTE is the same as in mutateTracked's statement.
  const [created] = await sql`
    with claim as (
      insert into applied_transactions (transaction_id, organization_id, entity_type, entity_id, action)
      values (${context.transactionId}, ${context.organizationId}, ${definition.tracked.entityType}, ${id}, 'create')
      on conflict do nothing
      returning 1
    ),
    created as (
      insert into ${table} (${columns})
      select ${columns} from jsonb_populate_record(null::${table}, ${JSON.stringify(record)}::text::jsonb)
      where exists (select 1 from claim)
      returning *
    )
    select *, pg_current_xact_id()::xid::text as sync_txid from created`;
  if (!created) return answerReplay(db, definition, context, 'create', requestedId);
  return { entity: readRow(definition, created), replayed: false, txid: txidOf(created) };
}

export async function updateTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
  fields: Record<string, unknown>,
): Promise<WriteResult> {
  const replay = await checkReferencesUnlessReplay(db, definition, context, 'update', id, fields);
  if (replay) return replay;
  return mutateTracked(db, definition, context, id, {
    action: 'update',
    changes: toColumns(definition, fields),
    deletedAt: 'keep',
  });
}

/** Soft delete: the row stays (with `deletedAt`) so replays, history and shapes can see it. */
export function deleteTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
): Promise<WriteResult> {
  return mutateTracked(db, definition, context, id, { action: 'delete', changes: {}, deletedAt: 'set' });
}

/** The inverse of a recorded transaction (see tracked-undo.ts), applied as a write of its own. */
export interface UndoWrite {
  /** The transaction undone: the row must still be at the version it produced. */
  undoes: string;
  entityId: string;
  action: 'update' | 'delete';
  /** Entity fields (camelCase properties) set back to their previous values. */
  fields: Record<string, unknown>;
  deletedAt: DeletedAtChange;
}

/** An update keeps `deleted_at`, a soft delete sets it, a restore clears it. */
type DeletedAtChange = 'keep' | 'set' | 'clear';

/**
 * An undo is an ordinary tracked write (claimed, stamped, lock-checked in its one statement),
 * whose lock is "the row's latest transaction is still the one undone" instead of
 * X-Expected-Transaction-Id, and which stamps `transactions.undo` for the activity.
 */
export async function undoTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  undo: UndoWrite,
): Promise<WriteResult> {
  const { undoes, entityId, action, fields, deletedAt } = undo;
  const replay = await checkReferencesUnlessReplay(db, definition, context, action, entityId, fields);
  if (replay) return replay;
  return mutateTracked(db, definition, context, entityId, {
    action,
    changes: toColumns(definition, fields),
    deletedAt,
    undoes,
  });
}

interface Mutation {
  /** The claimed action; also the `transactions` slot stamped. */
  action: 'update' | 'delete';
  /** Column name → new value. */
  changes: Record<string, unknown>;
  deletedAt: DeletedAtChange;
  /** Set for an undo: guards on the row's latest transaction instead of the expected version. */
  undoes?: string;
}

async function mutateTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
  mutation: Mutation,
): Promise<WriteResult> {
  const { action, changes, deletedAt, undoes = null } = mutation;
  const sql = rawSql(db);
  const { table, columns: columnList } = namesOf(sql, definition.tracked.tableName);
  const record = { ...changes, modified_by: context.userId, last_client_id: context.clientId };
  const columns = columnList(Object.keys(record));
  const { transactionId, organizationId, expectedTransactionId } = context;
  // Every choice below is a bound value, so updates, deletes, restores and undos of one column
  // set share one prepared statement.
  // - deleted_at: kept by an update, set by a soft delete, cleared by a restore.
  // - transactions: the action's slot stamped; an undo also records what it undid.
  // - the guard, without an undo: a live row at the expected version, or at any version when
  //   none is expected; for an undo: the row's latest transaction is the one undone (its
  //   delete's when deleted, else its lock version: `latestTransactionOf`).
  try {
    const [result] = await sql`
      with claim as (
        insert into applied_transactions (transaction_id, organization_id, entity_type, entity_id, action)
        values (${transactionId}, ${organizationId}, ${definition.tracked.entityType}, ${id}, ${action})
        on conflict do nothing
        returning 1
      ),
      written as (
        update ${table} set
          (${columns}) = (select ${columns} from jsonb_populate_record(null::${table}, ${JSON.stringify(record)}::text::jsonb)),
          modified_at = now(),
          deleted_at = case ${deletedAt}::text when 'set' then now() when 'clear' then null else deleted_at end,
          transactions = jsonb_set(transactions, ${`{${action}}`}::text[], to_jsonb(${transactionId}::text))
            || case when ${undoes}::text is null then '{}'::jsonb
                    else jsonb_build_object('undo', jsonb_build_object('transactionId', ${transactionId}::text, 'undoes', ${undoes}::text)) end
        where id = ${id} and organization_id = ${organizationId}
          and case when ${undoes}::text is null
                then deleted_at is null
                  and (${expectedTransactionId}::text is null
                       or coalesce(transactions->>'update', transactions->>'insert') = ${expectedTransactionId}::text)
                else (case when deleted_at is null then coalesce(transactions->>'update', transactions->>'insert')
                           else transactions->>'delete' end) = ${undoes}::text
              end
          and exists (select 1 from claim)
        returning *
      )
      select exists (select 1 from claim) as claimed,
             case when exists (select 1 from claim) and not exists (select 1 from written)
                  then sync_reject('tracked write matched no row') end as rejected,
             pg_current_xact_id()::xid::text as sync_txid, w.*
      from (select 1) as one left join written w on true`;
    if (!result?.claimed) return answerReplay(db, definition, context, action, id);
    return { entity: readRow(definition, result), replayed: false, txid: txidOf(result) };
  } catch (err) {
    if (errorCode(err) === SQLSTATE.trackedWriteRejected)
      throw await explainRejectedWrite(db, definition, context, id, undoes);
    throw err;
  }
}

/** Why the guarded write matched no row: absent, deleted, or a different version. */
async function explainRejectedWrite(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
  undoes: string | null,
): Promise<AppError> {
  const current = await findRow(db, definition, context.organizationId, id, { includeDeleted: true });
  if (!current) return AppError.notFound(definition.singular);
  const serverVersion = presentTrackedRow(current);
  if (undoes !== null) {
    return new AppError(
      409,
      ERROR_CODE.transactionConflict,
      'The entity changed since the transaction to undo: undoing it would overwrite a later change',
      { serverVersion, expectedTransaction: undoes, actualTransaction: latestTransactionOf(current) },
    );
  }
  if (current.deletedAt) {
    return new AppError(
      409,
      ERROR_CODE.entityDeleted,
      `This ${definition.singular.toLowerCase()} was deleted`,
      {
        serverVersion,
      },
    );
  }
  return new AppError(
    409,
    ERROR_CODE.transactionConflict,
    'The entity changed since the version you expected',
    {
      serverVersion,
      expectedTransaction: context.expectedTransactionId,
      actualTransaction: versionOf(current),
    },
  );
}

/** The optimistic-lock version of a row: its last update's transaction, else its insert's. */
function versionOf(row: { transactions: RowTransactions }): string | null {
  return row.transactions.update ?? row.transactions.insert;
}

/** The transaction that last changed a row: its delete's when deleted, else its version. */
function latestTransactionOf(row: { deletedAt: Date | null; transactions: RowTransactions }) {
  return row.deletedAt ? row.transactions.delete : versionOf(row);
}

async function findRow(
  db: Db,
  definition: TrackedEntityDefinition,
  organizationId: string,
  id: string,
  options: { includeDeleted: boolean },
): Promise<TrackedRow | undefined> {
  const table = definition.tracked.table;
  const [row] = await db
    .select()
    .from(table)
    .where(
      and(
        eq(table.id, id),
        eq(table.organizationId, organizationId),
        options.includeDeleted ? undefined : isNull(table.deletedAt),
      ),
    );
  return row;
}

export async function getTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  organizationId: string,
  id: string,
): Promise<TrackedRow> {
  const row = await findRow(db, definition, organizationId, id, { includeDeleted: false });
  if (!row) throw AppError.notFound(definition.singular);
  return row;
}

/** Live rows in a stable order (creation time, then id); the cursor is the last row's id. */
export async function listTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  organizationId: string,
  page: { limit: number; cursor?: string | undefined },
): Promise<{ items: TrackedRow[]; nextCursor: string | null }> {
  const table = definition.tracked.table;
  // Compared in SQL: creation times have microseconds that a JS Date would drop.
  const afterCursor = page.cursor
    ? drizzleSql`(${table.createdAt}, ${table.id}) > (select created_at, id from ${table} where id = ${page.cursor} and organization_id = ${organizationId})`
    : undefined;
  const rows = await db
    .select()
    .from(table)
    .where(and(eq(table.organizationId, organizationId), isNull(table.deletedAt), afterCursor))
    .orderBy(asc(table.createdAt), asc(table.id))
    .limit(page.limit + 1);
  if (
    rows.length === 0 &&
    page.cursor &&
    !(await findRow(db, definition, organizationId, page.cursor, { includeDeleted: true }))
  ) {
    throw new AppError(400, ERROR_CODE.validationFailed, 'Unknown cursor', {
      issues: [{ path: ['cursor'], message: 'Unknown cursor' }],
    });
  }
  const items = rows.slice(0, page.limit);
  const nextCursor = rows.length > page.limit ? (items.at(-1)?.id ?? null) : null;
  return { items, nextCursor };
}

/** The JSON of a tracked row: the shared columns typed, the entity's own fields as they are. */
export interface TrackedJson extends Record<string, unknown> {
  id: string;
  organizationId: string;
  createdAt: string;
  createdBy: string;
  modifiedAt: string | null;
  modifiedBy: string | null;
  deletedAt: string | null;
  transactions: RowTransactions;
  lastClientId: string | null;
}

/** JSON form of a row: dates as ISO strings. */
export function presentTrackedRow(row: TrackedRow): TrackedJson {
  return {
    ...Object.fromEntries(
      Object.entries(row).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : value]),
    ),
    createdAt: row.createdAt.toISOString(),
    modifiedAt: row.modifiedAt?.toISOString() ?? null,
    deletedAt: row.deletedAt?.toISOString() ?? null,
    id: row.id,
    organizationId: row.organizationId,
    createdBy: row.createdBy,
    modifiedBy: row.modifiedBy,
    transactions: row.transactions,
    lastClientId: row.lastClientId,
  };
}

/**
 * Tracked writes, once for every product entity.
 *
 *   BEGIN
 *     claim X-Transaction-Id in applied_transactions ──(already there)──► replay: answer the
 *       │                                                     current row, or 409 REUSED
 *     write the row, stamped with transactions.<action> and last_client_id,
 *       guarded by id + organization + not deleted + expected version (one statement)
 *       │ (no row) ──► 404 / 409 ENTITY_DELETED / 409 TRANSACTION_CONFLICT, claim rolled back
 *   COMMIT
 *
 * The claim's primary key serialises concurrent duplicates: a second insert of the same id
 * waits for the first transaction and then sees the conflict (or, if it rolled back, takes the
 * claim itself). Nothing here depends on the CDC worker having caught up.
 */
import { and, asc, eq, isNull, type SQL, sql } from 'drizzle-orm';
import { nanoid } from 'nanoid';
import type { Db } from '../../db/client.ts';
import { appliedTransactions, type pages, type RowTransactions } from '../../db/schema.ts';
import { AppError } from '../errors.ts';
import { ERROR_CODE } from '../protocol.ts';
import type { DbTransaction, TrackedEntityDefinition } from './tracked-entity.ts';
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
}

/**
 * Every tracked table shares the bookkeeping columns of `trackedColumns()` in schema.ts; the
 * core only touches those, so it reads any registered table through this one column set.
 */
type TrackedPgTable = typeof pages;
export type TrackedRow = Record<string, unknown> & {
  id: string;
  deletedAt: Date | null;
  transactions: RowTransactions;
};

function tableOf(definition: TrackedEntityDefinition): TrackedPgTable {
  return definition.tracked.table as TrackedPgTable;
}

/** The optimistic-lock version of a row: its last update's transaction, else its insert's. */
const currentVersion = (table: TrackedPgTable) =>
  sql<string>`coalesce(${table.transactions}->>'update', ${table.transactions}->>'insert')`;

export function versionOf(row: { transactions: RowTransactions }): string | null {
  return row.transactions.update ?? row.transactions.insert;
}

async function claimTransaction(
  tx: DbTransaction,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  action: Action,
  entityId: string,
): Promise<boolean> {
  const claimed = await tx
    .insert(appliedTransactions)
    .values({
      transactionId: context.transactionId,
      organizationId: context.organizationId,
      entityType: definition.tracked.entityType,
      entityId,
      action,
    })
    .onConflictDoNothing()
    .returning({ transactionId: appliedTransactions.transactionId });
  return claimed.length === 1;
}

/** A transaction id seen before: the same mutation answers the row as it is now; another is an error. */
async function answerReplay(
  tx: DbTransaction,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  action: Action,
  entityId: string | undefined,
): Promise<WriteResult> {
  const [applied] = await tx
    .select()
    .from(appliedTransactions)
    .where(eq(appliedTransactions.transactionId, context.transactionId));
  const sameMutation =
    applied !== undefined &&
    applied.organizationId === context.organizationId &&
    applied.entityType === definition.tracked.entityType &&
    applied.action === action &&
    (entityId === undefined || applied.entityId === entityId);
  if (!applied || !sameMutation) {
    throw new AppError(
      409,
      ERROR_CODE.transactionIdReused,
      'This transaction id was already used for a different entity or action',
    );
  }
  const entity = await findRow(tx, definition, context.organizationId, applied.entityId, {
    includeDeleted: true,
  });
  if (!entity) throw AppError.notFound(definition.singular);
  return { entity, replayed: true };
}

async function findRow(
  db: Db | DbTransaction,
  definition: TrackedEntityDefinition,
  organizationId: string,
  id: string,
  options: { includeDeleted: boolean },
): Promise<TrackedRow | undefined> {
  const table = tableOf(definition);
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
  return row as TrackedRow | undefined;
}

export async function createTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  input: Record<string, unknown> & { id?: string | undefined },
): Promise<WriteResult> {
  const { id: requestedId, ...fields } = input;
  const id = requestedId ?? nanoid(16);
  return db.transaction(async (tx) => {
    if (!(await claimTransaction(tx, definition, context, 'create', id))) {
      return answerReplay(tx, definition, context, 'create', requestedId);
    }
    await definition.checkReferences?.(tx, context.organizationId, fields);
    const table = tableOf(definition);
    const [row] = await tx
      .insert(table)
      .values({
        ...(fields as { title: string }),
        id,
        organizationId: context.organizationId,
        createdBy: context.userId,
        transactions: { insert: context.transactionId, update: null, delete: null },
        lastClientId: context.clientId,
      })
      .onConflictDoNothing({ target: table.id })
      .returning();
    if (!row) throw new AppError(409, ERROR_CODE.idTaken, `The id "${id}" is already taken`);
    return { entity: row as TrackedRow, replayed: false };
  });
}

export function updateTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
  fields: Record<string, unknown>,
): Promise<WriteResult> {
  return mutateTracked(db, definition, context, id, 'update', fields);
}

/** Soft delete: the row stays (with `deletedAt`) so replays, history and shapes can see it. */
export function deleteTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
): Promise<WriteResult> {
  return mutateTracked(db, definition, context, id, 'delete', { deletedAt: sql`now()` });
}

async function mutateTracked(
  db: Db,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
  action: 'update' | 'delete',
  changes: Record<string, unknown>,
): Promise<WriteResult> {
  const table = tableOf(definition);
  return db.transaction(async (tx) => {
    if (!(await claimTransaction(tx, definition, context, action, id))) {
      return answerReplay(tx, definition, context, action, id);
    }
    if (action === 'update') await definition.checkReferences?.(tx, context.organizationId, changes);
    const guards: (SQL | undefined)[] = [
      eq(table.id, id),
      eq(table.organizationId, context.organizationId),
      isNull(table.deletedAt),
      context.expectedTransactionId === null
        ? undefined
        : eq(currentVersion(table), context.expectedTransactionId),
    ];
    // Check and write are one statement: under concurrency PostgreSQL re-evaluates the guard
    // against the row version it waited for, so of N writers expecting one version, one wins.
    const [row] = await tx
      .update(table)
      .set({
        ...(changes as Record<string, never>),
        modifiedAt: sql`now()`,
        modifiedBy: context.userId,
        lastClientId: context.clientId,
        transactions: sql`jsonb_set(${table.transactions}, ${`{${action}}`}::text[], to_jsonb(${context.transactionId}::text))`,
      })
      .where(and(...guards))
      .returning();
    if (row) return { entity: row as TrackedRow, replayed: false };
    throw await explainRejectedWrite(tx, definition, context, id);
  });
}

/** Why the guarded write matched no row: absent, deleted, or a different version. */
async function explainRejectedWrite(
  tx: DbTransaction,
  definition: TrackedEntityDefinition,
  context: WriteContext,
  id: string,
): Promise<AppError> {
  const current = await findRow(tx, definition, context.organizationId, id, { includeDeleted: true });
  if (!current) return AppError.notFound(definition.singular);
  const serverVersion = presentTrackedRow(current);
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
  const table = tableOf(definition);
  // Compared in SQL: creation times have microseconds that a JS Date would drop.
  const afterCursor = page.cursor
    ? sql`(${table.createdAt}, ${table.id}) > (select created_at, id from ${table} where id = ${page.cursor} and organization_id = ${organizationId})`
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
  const items = rows.slice(0, page.limit) as TrackedRow[];
  const nextCursor = rows.length > page.limit ? (items.at(-1)?.id ?? null) : null;
  return { items, nextCursor };
}

/** JSON form of a row: dates as ISO strings. */
export function presentTrackedRow(row: TrackedRow): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : value]),
  );
}

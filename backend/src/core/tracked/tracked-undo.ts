/**
 * The inverse of one recorded transaction, pure: the activity the CDC worker wrote for it gives
 * the write that undoes it. That write is an ordinary tracked write with its own transaction id
 * (`undoTracked` in tracked-operations.ts).
 *
 *   recorded (activity)                        undo                                  claimed as
 *   create                                   → soft delete                           delete
 *   delete                                   → restore (deleted_at = null)           update
 *   update of keys K                         → K back to their previous values       update
 *   update that restored (deleted_at ∈ K)    → soft delete, the rest of K back       delete
 *
 * Only the entity's own fields come back; bookkeeping columns are stamped as by any write. An
 * undo is an activity like any other, so undoing an undo redoes the change.
 */
import { getTableColumns } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { AppError } from '../errors.ts';
import { ERROR_CODE } from '../protocol.ts';
import type { TrackedEntityDefinition } from './tracked-entity.ts';
import type { UndoWrite } from './tracked-operations.ts';

/** What the inverse needs of the activity that recorded a transaction (API JSON of an activity). */
export interface RecordedTransaction {
  action: 'create' | 'update' | 'delete';
  entityId: string;
  /** Column names (snake_case) whose value the transaction changed. */
  changedKeys: string[];
  /** Their values before it, by column name; absent when the entity type does not keep them. */
  previousValues?: Record<string, unknown> | undefined;
}

export function inverseOfTransaction(
  definition: TrackedEntityDefinition,
  transactionId: string,
  recorded: RecordedTransaction,
): UndoWrite {
  const base = { undoes: transactionId, entityId: recorded.entityId };
  if (recorded.action === 'create') return { ...base, action: 'delete', fields: {}, deletedAt: 'set' };
  if (recorded.action === 'delete') return { ...base, action: 'update', fields: {}, deletedAt: 'clear' };

  const columns: Record<string, PgColumn> = getTableColumns(definition.tracked.table);
  const deletedAtColumn = columns.deletedAt?.name;
  const previous = recorded.previousValues;
  const fields: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const property of Object.keys(definition.fields)) {
    const column = columns[property]?.name;
    if (column === undefined || !recorded.changedKeys.includes(column)) continue;
    if (previous && Object.hasOwn(previous, column)) fields[property] = previous[column];
    else missing.push(column);
  }
  if (missing.length > 0) {
    throw new AppError(
      409,
      ERROR_CODE.previousValuesNotKept,
      `The previous values of this ${definition.singular.toLowerCase()} were not kept, so the change cannot be undone`,
      { missingKeys: missing },
    );
  }
  // setting deleted_at is recorded as a delete, so an update that changed it restored the row:
  // its inverse deletes the row again
  const restored = deletedAtColumn !== undefined && recorded.changedKeys.includes(deletedAtColumn);
  return restored
    ? { ...base, action: 'delete', fields, deletedAt: 'set' }
    : { ...base, action: 'update', fields, deletedAt: 'keep' };
}

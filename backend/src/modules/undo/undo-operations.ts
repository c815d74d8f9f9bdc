/**
 * Undo of a transaction from the activity log:
 *
 *   activity of {txId} in this organization? ── no ──► claimed here (applied_transactions)?
 *        │ yes                                            no ──► 404 NOT_FOUND
 *        │                                                yes ─► wait for the CDC worker to record
 *        │                                                       it (≤ undoRecordWaitMs), else
 *        ▼                                                       409 TRANSACTION_NOT_RECORDED
 *   inverseOfTransaction (pure) ── previous values missing ──► 409 PREVIOUS_VALUES_NOT_KEPT
 *        ▼
 *   undoTracked: ONE statement claims the undo's own transaction id and writes the inverse where
 *   the row's latest transaction is still {txId} ── else 409 TRANSACTION_CONFLICT + serverVersion
 *
 * Another organization's transaction is not found exactly like one that never existed.
 */
import type { AppDeps } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import type { TrackedEntityDefinition } from '../../core/tracked/tracked-entity.ts';
import { undoTracked, type WriteContext, type WriteResult } from '../../core/tracked/tracked-operations.ts';
import { inverseOfTransaction } from '../../core/tracked/tracked-undo.ts';
import { trackedEntities } from '../../entities.ts';
import { findTransactionActivity } from '../activities/activity-operations.ts';

export interface UndoResult extends WriteResult {
  definition: TrackedEntityDefinition;
}

export async function undoTransaction(
  deps: AppDeps,
  context: WriteContext,
  transactionId: string,
): Promise<UndoResult> {
  const recorded = await recordedTransaction(deps, context.organizationId, transactionId);
  const definition = trackedEntities.find((entity) => entity.tracked.entityType === recorded.entityType);
  // a truncation is recorded without a transaction id of ours, so it is never found here
  if (!definition || recorded.action === 'truncate') throw unknownTransaction();
  const inverse = inverseOfTransaction(definition, transactionId, { ...recorded, action: recorded.action });
  return { ...(await undoTracked(deps.db, definition, context, inverse)), definition };
}

const unknownTransaction = () =>
  new AppError(
    404,
    ERROR_CODE.notFound,
    'No transaction with this id in the activity log of this organization (unknown, or removed by retention)',
  );

/** The activity that recorded the transaction; waits for the CDC worker when it is applied but not yet recorded. */
async function recordedTransaction(deps: AppDeps, organizationId: string, transactionId: string) {
  const find = () => findTransactionActivity(deps.sql, organizationId, transactionId);
  const found = await find();
  if (found) return found;
  if (!(await isAppliedIn(deps, organizationId, transactionId))) throw unknownTransaction();
  // subscribed before the next read, so a batch committed after that read still ends the wait
  const waiter = deps.notifier.waiter(organizationId);
  try {
    const deadline = Date.now() + deps.config.undoRecordWaitMs;
    do {
      const activity = await find();
      if (activity) return activity;
      // notifications wake the wait; the cap re-reads should one be missed
      await waiter.wait(Math.min(deadline - Date.now(), 250));
    } while (Date.now() < deadline);
    const activity = await find();
    if (activity) return activity;
  } finally {
    waiter.close();
  }
  throw new AppError(
    409,
    ERROR_CODE.transactionNotRecorded,
    'This transaction was applied but is not in the activity log yet (the CDC worker is behind or down): retry later',
  );
}

async function isAppliedIn(deps: AppDeps, organizationId: string, transactionId: string) {
  const [row] = await deps.sql`
    select 1 from applied_transactions
    where transaction_id = ${transactionId} and organization_id = ${organizationId}`;
  return row !== undefined;
}

/**
 * Persisting a batch of transaction parts (transaction-assembler.ts) in ONE database transaction:
 *
 *   BEGIN, synchronous_commit = off
 *     COPY the activities into `activities`            (may run while the previous batch commits)
 *     wait until the previous batch has committed       (activities become visible in WAL order)
 *     apply the count changes in transaction order: deltas to entity_counts; a TRUNCATE sets its
 *       type's counts to 0, logs one `<type>.truncated` activity per organization that had a
 *       count, and renames the activity log (activity_log.id: every shape handle changes)
 *     cdc_state := the position after the batch (guarded: it must be the position before it),
 *       NOTIFY sync_activities
 *   COMMIT (no fsync wait)             → flush-gate.ts: once its WAL is flushed, the caller
 *                                        acknowledges the batch's last whole commit to the slot
 *
 * Exactly once (guarantee 3): parts are written in WAL order and `cdc_state` moves in the same
 * transaction as their rows: `last_lsn` is the highest commit LSN written completely, and
 * (`open_lsn`, `open_position`) how far a transaction written in parts got. After a (re)connect
 * or a failed write the caller re-reads it with `readWrittenPosition` (FOR UPDATE: it waits out
 * a write still in flight from a dead process) and skips what is at or below it; their rows and
 * count changes were committed together, so nothing is written or counted twice. The guard on
 * the state update refuses a batch that does not start exactly where the last one ended, and the
 * primary key (lsn, position) rejects a duplicate outright.
 *
 * Asynchronous commit, and why it keeps exactly-once: a batch's COMMIT returns before its WAL is
 * on disk, so readers (woken by the NOTIFY, sent at commit) see activities one fsync earlier. A
 * server crash before the flush loses the batch's rows, count changes and cdc_state move
 * TOGETHER (one transaction), so what survives is still one consistent written position. The
 * slot is the other half: it is told a source transaction is done only after PostgreSQL reports
 * WAL flushed past the batch's commit (`pg_current_wal_flush_lsn()`, flush-gate.ts), so its
 * confirmed position (which it may write to disk at any time) never passes a batch that a crash
 * could still take away. After the crash the slot re-sends from at or before the surviving
 * cdc_state, the fence skips what survived, and what was lost is written again with the same
 * LSN-based keys: one activity per change. Every other write of the worker (fencing, retention,
 * resync) keeps synchronous commits.
 *
 * COPY instead of INSERT … SELECT: parsing is the costly part of a bulk insert here (about a
 * third of the time with json_to_recordset), and COPY's binary format is the cheapest to parse
 * (0.90x the backend CPU of its text format for the same rows). The rows were encoded when the
 * changes were mapped (activity-copy.ts).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NOTIFY_CHANNEL } from '@sync/db/constants';
import { activityId } from '@sync/db/lsn';
import { encodeActivityNotification } from '@sync/db/notification';
import type postgres from 'postgres';
import {
  type CountChange,
  type CountDelta,
  isTruncation,
  type TableTruncation,
  TRUNCATE_POSITION_SPAN,
} from './activity.ts';
import { COPY_COLUMNS, COPY_HEADER, COPY_TRAILER } from './activity-copy.ts';
import { EarlierBatchFailedError, WrittenPositionConflictError } from './errors.ts';
import type { WrittenPosition } from './transaction-assembler.ts';

export interface ActivityBatch {
  /** The activities as binary COPY rows (activity-copy.ts), in a few large chunks. */
  copyRows: Buffer[];
  activityCount: number;
  /** Key of the batch's last activity (null: none). */
  lastActivity: { lsn: bigint; position: number } | null;
  /** Organizations of its activities, each once. */
  organizationIds: string[];
  /** Count deltas and truncations of the batch, in WAL order. */
  countChanges: CountChange[];
  /** Where the batch starts: cdc_state must say exactly this before it is written. */
  from: { commitLsn: bigint; position: number };
  /** cdc_state after the batch. */
  to: WrittenPosition;
  /** Commit time of the batch's last source transaction (ISO, microseconds). */
  lastCommitTime: string;
}

/**
 * How far the slot's activities are committed. Waits for a concurrent writer of this slot's
 * state (a batch still committing on behalf of a process that died) to finish.
 */
export async function readWrittenPosition(sql: postgres.Sql, slotName: string): Promise<WrittenPosition> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ last_lsn: string; open_lsn: string | null; open_position: number | null }[]>`
      select last_lsn::text, open_lsn::text, open_position from cdc_state where slot_name = ${slotName} for update`;
    if (!row) throw new WrittenPositionConflictError(`no cdc_state row for slot "${slotName}"`);
    return {
      lastLsn: BigInt(row.last_lsn),
      open:
        row.open_lsn === null || row.open_position === null
          ? null
          : { lsn: BigInt(row.open_lsn), position: row.open_position },
    };
  });
}

/**
 * Write one batch. `previous` resolves true once the batch before it committed (false if it
 * failed: this one then rolls back too, so activities never become visible out of order).
 */
export async function writeActivityBatch(
  sql: postgres.Sql,
  slotName: string,
  batch: ActivityBatch,
  previous: Promise<boolean> = Promise.resolve(true),
): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`set local synchronous_commit = off`;
    if (batch.activityCount > 0) {
      const copy = await tx`copy activities (${tx(COPY_COLUMNS)}) from stdin (format binary)`.writable();
      await pipeline(Readable.from([COPY_HEADER, ...batch.copyRows, COPY_TRAILER]), copy);
    }
    if (!(await previous)) throw new EarlierBatchFailedError();
    const truncated = await applyCountChanges(tx, batch.countChanges);
    const payload = notificationPayload(batch, truncated);
    const expectedOpen = batch.from.position > 0 ? batch.from : null;
    const [state] = await tx<{ updated: number }[]>`
      with state as (
        update cdc_state
        set last_lsn = ${String(batch.to.lastLsn)}::int8,
          open_lsn = ${batch.to.open ? String(batch.to.open.lsn) : null}::int8,
          open_position = ${batch.to.open?.position ?? null}::int,
          last_event_at = case when ${payload}::text is null then last_event_at else ${batch.lastCommitTime}::timestamptz end,
          worker_peak_rss_bytes = ${process.resourceUsage().maxRSS * 1024}::int8,
          updated_at = now()
        where slot_name = ${slotName} and last_lsn < ${String(batch.from.commitLsn)}::int8
          and open_lsn is not distinct from ${expectedOpen ? String(expectedOpen.commitLsn) : null}::int8
          and open_position is not distinct from ${expectedOpen?.position ?? null}::int
        returning 1
      )
      select (select count(*) from state)::int as updated,
        case when ${payload}::text is null then null else pg_notify(${NOTIFY_CHANNEL}, ${payload}::text) end`;
    // Not starting where the last batch ended means someone else wrote it: never commit a duplicate.
    if (state?.updated !== 1) {
      throw new WrittenPositionConflictError(
        `cdc_state of slot ${slotName} is not where this batch starts (it was written already)`,
      );
    }
  });
}

/** Deltas summed between truncations; a truncation applies after the deltas before it. */
async function applyCountChanges(
  tx: postgres.TransactionSql,
  changes: readonly CountChange[],
): Promise<TableTruncation[]> {
  const truncated: TableTruncation[] = [];
  let deltas: CountDelta[] = [];
  for (const change of changes) {
    if (!isTruncation(change)) {
      deltas.push(change);
      continue;
    }
    await addCountDeltas(tx, deltas);
    deltas = [];
    await applyTruncation(tx, change);
    truncated.push(change);
  }
  await addCountDeltas(tx, deltas);
  return truncated;
}

async function addCountDeltas(tx: postgres.TransactionSql, deltas: readonly CountDelta[]): Promise<void> {
  const counts = sumDeltas(deltas);
  if (counts.length === 0) return;
  await tx`
    insert into entity_counts (organization_id, entity_type, count)
    select organization_id, entity_type, delta
    from json_to_recordset(${JSON.stringify(counts)}::text::json)
      as d(organization_id text, entity_type text, delta int8)
    on conflict (organization_id, entity_type) do update set count = entity_counts.count + excluded.count`;
}

/**
 * TRUNCATE of a tracked table: every organization with a count of that type gets a
 * `<type>.truncated` activity (entity `*`) and a count of 0; the log gets a new id, so every
 * shape handle changes and clients refetch their snapshot (409 must-refetch).
 */
async function applyTruncation(tx: postgres.TransactionSql, truncation: TableTruncation): Promise<void> {
  await tx`
    with organizations as (
      select organization_id, (row_number() over (order by organization_id) - 1)::int as n
      from entity_counts where entity_type = ${truncation.entityType}
    ), logged as (
      insert into activities (lsn, position, type, action, entity_type, entity_id, organization_id, changed_keys, row, xid, created_at)
      select ${String(truncation.lsn)}::int8, ${truncation.position} + n, ${truncation.type}, 'truncate',
        ${truncation.entityType}, '*', organization_id, '{}', '{}'::jsonb, ${truncation.xid}, ${truncation.createdAt}::timestamptz
      from organizations where n < ${TRUNCATE_POSITION_SPAN}
      returning 1
    ), renamed as (
      update activity_log set id = substr(md5(random()::text || clock_timestamp()::text), 1, 12)
      returning 1
    )
    update entity_counts set count = 0 where entity_type = ${truncation.entityType}`;
}

function sumDeltas(
  deltas: readonly CountDelta[],
): { organization_id: string; entity_type: string; delta: number }[] {
  const sums = new Map<string, { organization_id: string; entity_type: string; delta: number }>();
  for (const d of deltas) {
    const key = `${d.entityType}\u0000${d.organizationId}`;
    const sum = sums.get(key);
    if (sum) sum.delta += d.delta;
    else sums.set(key, { organization_id: d.organizationId, entity_type: d.entityType, delta: d.delta });
  }
  // A fixed order keeps concurrent upserts of the same rows from deadlocking.
  return [...sums.values()]
    .filter((s) => s.delta !== 0)
    .sort((a, b) => (a.entity_type + a.organization_id < b.entity_type + b.organization_id ? -1 : 1));
}

function notificationPayload(batch: ActivityBatch, truncated: readonly TableTruncation[]): string | null {
  const last = batch.lastActivity;
  const lastTruncation = truncated.at(-1);
  if (!last && !lastTruncation) return null;
  const lastIsRow =
    last !== null &&
    (lastTruncation === undefined ||
      last.lsn > lastTruncation.lsn ||
      (last.lsn === lastTruncation.lsn && last.position > lastTruncation.position));
  const lastId =
    lastIsRow || lastTruncation === undefined
      ? activityId(last ?? { lsn: 0n, position: 0 })
      : activityId(lastTruncation);
  // A truncation concerns every organization that had rows of the type: wake them all.
  const organizationIds = truncated.length > 0 ? null : batch.organizationIds;
  return encodeActivityNotification({ id: lastId, organizationIds });
}

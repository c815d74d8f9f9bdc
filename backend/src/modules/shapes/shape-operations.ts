/**
 * Reads behind the shape endpoints. The snapshot reads the entity table and the position of the
 * activity log in ONE repeatable-read transaction, so the log after that position holds every
 * change the snapshot lacks. Changes the snapshot already has but the CDC worker had not yet
 * logged come again after it: full rows in log order, so re-applying them converges to the
 * same state (guarantee 4: nothing lost, nothing left applied twice).
 */

import { singleFlight } from '../../core/single-flight.ts';
import type { Queryable, Sql } from '../../db/client.ts';
import type { TrackedTable } from '../../db/tracked-tables.ts';
import { type LogEntry, messageKey, shapeColumns } from './shape-messages.ts';

export interface LogPosition {
  lsn: string;
  position: number;
}

export interface ShapeLogState {
  /** Names this database's activity log: a handle from another database never matches. */
  logId: string;
  /** Increases on every CDC resync: part of the handle, so clients refetch. */
  epoch: number;
  /** Entries at or before this LSN may have been deleted by retention. */
  prunedThroughLsn: string;
}

/**
 * Handles name one log: the entity type's entries in this database, in one CDC epoch. A handle
 * may carry a `~suffix`: the official client treats a 409 that answers with the handle it
 * already had as a stale cache, so a 409 for an offset lost to retention (same log) hands out
 * a suffixed handle, which the snapshot then echoes.
 */
export function shapeHandle(tracked: TrackedTable, state: Pick<ShapeLogState, 'logId' | 'epoch'>): string {
  return `${tracked.entityType}-${state.logId}-${state.epoch}`;
}

export function isHandleOf(handle: string | undefined, canonical: string): handle is string {
  return handle === canonical || (handle?.startsWith(`${canonical}~`) ?? false);
}

/** A handle for the same log that differs from the one the client was told to drop. */
export function renewedHandle(canonical: string, expired: string | undefined, state: ShapeLogState): string {
  const renewed = `${canonical}~r${state.prunedThroughLsn}`;
  return renewed === expired ? `${renewed}-${Date.now().toString(36)}` : renewed;
}

/** Retention deletes whole transactions (one commit time), so an offset inside the last pruned LSN lost nothing. */
export function isPruned(offset: LogPosition, state: Pick<ShapeLogState, 'prunedThroughLsn'>): boolean {
  return BigInt(offset.lsn) < BigInt(state.prunedThroughLsn);
}

export async function readLogState(sql: Queryable, cdcSlotName: string): Promise<ShapeLogState> {
  const [row] = await sql<{ log_id: string; pruned_through_lsn: string; epoch: number }[]>`
    select l.id as log_id, l.pruned_through_lsn::text as pruned_through_lsn,
           coalesce((select epoch from cdc_state where slot_name = ${cdcSlotName}), 1) as epoch
    from activity_log l limit 1`;
  return {
    logId: row?.log_id ?? 'none',
    epoch: row?.epoch ?? 1,
    prunedThroughLsn: row?.pruned_through_lsn ?? '0',
  };
}

/**
 * Where a snapshot starts in the log. Read BEFORE the rows: the worker writes activities in
 * commit-LSN order, so every change missing from the (later) row snapshot has an entry after
 * this position, and a change the rows already show but logged after it comes again as a full
 * row, which converges to the same state. Never behind the retention watermark, or the first
 * live request would be told to refetch.
 */
export async function readSnapshotStart(
  sql: Sql,
  organizationId: string,
  cdcSlotName: string,
): Promise<{ position: LogPosition; state: ShapeLogState }> {
  const [state, head] = await Promise.all([readLogState(sql, cdcSlotName), readLogHead(sql, organizationId)]);
  const position = isPruned(head, state) ? { lsn: state.prunedThroughLsn, position: 0 } : head;
  return { position, state };
}

/**
 * The organization's live rows as insert messages (JSON text), in batches as PostgreSQL
 * produces them: `col::text` is exactly Electric's value encoding.
 */
export async function streamSnapshotMessages(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  write: (messagesJson: string[]) => Promise<void>,
): Promise<void> {
  const columns = shapeColumns(tracked);
  const keyPrefix = messageKey(tracked, '').slice(0, -1);
  await sql
    .unsafe<{ message: string }[]>(
      `select json_build_object(
         'key', $2::text || replace(id, '"', '""') || '"',
         'value', json_build_object(${columns.map((c) => `'${c}', "${c}"::text`).join(', ')}),
         'headers', '{"operation":"insert"}'::json
       )::text as message
       from "${tracked.tableName}"
       where organization_id = $1 and deleted_at is null
       order by created_at, id`,
      [organizationId, keyPrefix],
    )
    .cursor(2_000, (rows) => write(rows.map((row) => row.message)));
}

const logReads = singleFlight<LogEntry[]>();

/** Log entries after a position, oldest first. Concurrent identical reads share one query. */
export function readLog(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  after: LogPosition,
  limit: number,
): Promise<LogEntry[]> {
  const key = `${organizationId}|${tracked.entityType}|${after.lsn}_${after.position}|${limit}`;
  return logReads(key, async () => {
    const rows = await sql<
      {
        lsn: string;
        position: number;
        action: LogEntry['action'];
        entity_id: string;
        row: Record<string, unknown>;
        xid: string;
        restored: boolean;
      }[]
    >`
    select lsn::text as lsn, position, action, entity_id, row, xid,
           action = 'update' and ${tracked.table.deletedAt.name}::text = any(changed_keys) as restored
    from activities
    where organization_id = ${organizationId} and entity_type = ${tracked.entityType}
      and (lsn, position) > (${after.lsn}::bigint, ${after.position}::int)
    order by activities.lsn, activities.position
    limit ${limit}`;
    return rows.map((r) => ({
      lsn: r.lsn,
      position: r.position,
      action: r.action,
      entityId: r.entity_id,
      row: r.row,
      xid: Number(r.xid),
      restored: r.restored,
    }));
  });
}

/**
 * The newest position of the organization's log, of any entity type (for `offset=now` and a
 * snapshot's start). A type's log is read as "its entries after a position", so a position of
 * another type's entry serves as well, and the newest of the organization is one step down
 * activities_org_feed_idx (the write path keeps no per-type index).
 */
export async function readLogHead(sql: Queryable, organizationId: string): Promise<LogPosition> {
  const [row] = await sql<{ lsn: string; position: number }[]>`
    select lsn::text as lsn, position from activities
    where organization_id = ${organizationId}
    order by activities.lsn desc, activities.position desc limit 1`;
  return row ? { lsn: row.lsn, position: row.position } : { lsn: '0', position: 0 };
}

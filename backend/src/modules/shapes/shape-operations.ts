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
import { type CompiledSubset, compileSubset, type SubsetRequest } from './shape-subset.ts';

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
  tracked: TrackedTable,
  cdcSlotName: string,
): Promise<{ position: LogPosition; state: ShapeLogState }> {
  const [state, head] = await Promise.all([
    readLogState(sql, cdcSlotName),
    readLogHead(sql, organizationId, tracked),
  ]);
  const position = isPruned(head, state) ? { lsn: state.prunedThroughLsn, position: 0 } : head;
  return { position, state };
}

/** Which transactions a snapshot sees (`pg_current_snapshot()`), as Electric's `snapshot-end` carries it. */
export interface SnapshotVisibility {
  xmin: string;
  xmax: string;
  xip_list: string[];
}

async function readVisibility(tx: Queryable): Promise<SnapshotVisibility> {
  const [row] = await tx<SnapshotVisibility[]>`
    select pg_snapshot_xmin(s)::text as xmin, pg_snapshot_xmax(s)::text as xmax,
           array(select x::text from pg_snapshot_xip(s) as x order by 1) as xip_list
    from pg_current_snapshot() as s`;
  if (!row) throw new Error('pg_current_snapshot() returned no row');
  return row;
}

/** Rows selected as insert messages (JSON text): `col::text` is exactly Electric's value encoding. */
function snapshotMessagesQuery(tracked: TrackedTable, subset?: CompiledSubset): string {
  const columns = shapeColumns(tracked);
  const order = subset?.orderBy ? `${subset.orderBy}, id` : 'created_at, id';
  return `select json_build_object(
       'key', $2::text || replace(id, '"', '""') || '"',
       'value', json_build_object(${columns.map((c) => `'${c}', "${c}"::text`).join(', ')}),
       'headers', '{"operation":"insert"}'::json
     )::text as message
     from "${tracked.tableName}"
     where organization_id = $1 and deleted_at is null and ${subset?.where ?? 'true'}
     order by ${order}`;
}

const snapshotParameters = (organizationId: string, tracked: TrackedTable) => [
  organizationId,
  messageKey(tracked, '').slice(0, -1),
];

const READ_ONLY_SNAPSHOT = 'isolation level repeatable read read only';

/**
 * The organization's live rows as insert messages, in batches as PostgreSQL produces them (a
 * large shape is never one string in memory), and the visibility of the snapshot they were
 * read in: every transaction it sees is reflected in the rows.
 */
export function streamSnapshotMessages(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  write: (messagesJson: string[]) => Promise<void>,
): Promise<SnapshotVisibility> {
  return sql.begin(READ_ONLY_SNAPSHOT, async (tx) => {
    const visibility = await readVisibility(tx);
    await tx
      .unsafe<{ message: string }[]>(
        snapshotMessagesQuery(tracked),
        snapshotParameters(organizationId, tracked),
      )
      .cursor(2_000, (rows) => write(rows.map((row) => row.message)));
    return visibility;
  });
}

export interface SubsetSnapshot {
  position: LogPosition;
  state: ShapeLogState;
  visibility: SnapshotVisibility;
  messages: string[];
}

/**
 * A subset of the live rows, with the log position and visibility of the same snapshot: the
 * client merges it with the log after that position and skips changes the snapshot saw.
 */
export function readSubsetSnapshot(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  cdcSlotName: string,
  subset: SubsetRequest,
): Promise<SubsetSnapshot> {
  return sql.begin(READ_ONLY_SNAPSHOT, async (tx) => {
    const visibility = await readVisibility(tx);
    const state = await readLogState(tx, cdcSlotName);
    const head = await readLogHead(tx, organizationId, tracked);
    const compiled = compileSubset(tracked, subset, 3);
    const page = `${subset.limit === null ? '' : ` limit ${subset.limit}`} offset ${subset.offset}`;
    const rows = await tx.unsafe<{ message: string }[]>(snapshotMessagesQuery(tracked, compiled) + page, [
      ...snapshotParameters(organizationId, tracked),
      ...compiled.values,
    ]);
    const position = isPruned(head, state) ? { lsn: state.prunedThroughLsn, position: 0 } : head;
    return { position, state, visibility, messages: rows.map((row) => row.message) };
  });
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
      }[]
    >`
    select lsn::text as lsn, position, action, entity_id, row, xid
    from activities
    where organization_id = ${organizationId} and entity_type = ${tracked.entityType}
      and (lsn, position) > (${after.lsn}::bigint, ${after.position}::int)
    order by lsn, position
    limit ${limit}`;
    return rows.map((r) => ({
      lsn: r.lsn,
      position: r.position,
      action: r.action,
      entityId: r.entity_id,
      row: r.row,
      xid: Number(r.xid),
    }));
  });
}

/** The newest position of the log (for `offset=now`). */
export async function readLogHead(
  sql: Queryable,
  organizationId: string,
  tracked: TrackedTable,
): Promise<LogPosition> {
  const [row] = await sql<{ lsn: string; position: number }[]>`
    select lsn::text as lsn, position from activities
    where organization_id = ${organizationId} and entity_type = ${tracked.entityType}
    order by lsn desc, position desc limit 1`;
  return row ? { lsn: row.lsn, position: row.position } : { lsn: '0', position: 0 };
}

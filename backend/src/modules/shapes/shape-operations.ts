/**
 * Reads behind the shape endpoints. A snapshot is not one transaction but separate reads:
 *
 *   request 1:  log state + log head S (two queries) ─► chunk 1 (own repeatable-read transaction)
 *   request n:  log state (handle, retention) ─────────► chunk n after the last row sent (its own;
 *               read while chunk n-1 was sent, or now)
 *   last chunk: snapshot-end + up-to-date at S ─► the log after S
 *
 * That is enough because S is read BEFORE any row and the CDC worker commits activities in
 * commit-LSN order: every change not yet logged when S is read will be logged after S, so the
 * log from S brings whatever a chunk lacks (a change made after its snapshot, between chunks, or
 * to a row created between chunks with an older created_at, which the chunks skip). A change a
 * chunk already shows but logged after S comes again as a full row in log order, which
 * converges to the same state (guarantee 4: nothing lost, nothing left applied twice; a chunk
 * read ahead of its request is read after S too, so the same holds for it;
 * docs/ELECTRIC-PROTOCOL.md, "Snapshots"). A subset snapshot is one response whose rows, log
 * position and visibility must describe the same moment (the client skips later changes by
 * them), so it reads them in ONE repeatable-read transaction.
 */

import { z } from '@hono/zod-openapi';
import { activityId } from '@sync/db/lsn';
import type { TrackedTable } from '@sync/db/tracked-tables';
import { getTableColumns } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import type postgres from 'postgres';
import { singleFlight } from '../../core/single-flight.ts';
import type { Queryable, Sql } from '../../db/client.ts';
import type { ShapeColumns } from './shape-columns.ts';
import {
  type EncodedLogPage,
  encodeLogPage,
  type LogEntry,
  messageKey,
  onlyChanges,
} from './shape-messages.ts';
import { compileSubset, type SubsetRequest } from './shape-subset.ts';

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
export function shapeHandle(
  tracked: TrackedTable,
  columns: ShapeColumns,
  state: Pick<ShapeLogState, 'logId' | 'epoch'>,
): string {
  const log = `${tracked.entityType}-${state.logId}-${state.epoch}`;
  // a narrowed row is another shape of the same log: its bytes differ, so its handle does
  return columns.digest === null ? log : `${log}.${columns.digest}`;
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

const logStateReads = singleFlight<ShapeLogState>();

/**
 * The log's identity and watermark. Concurrent reads share one query: after a change, every
 * live client of every shape re-arms at once and checks its handle against this.
 */
export function readSharedLogState(sql: Sql, cdcSlotName: string): Promise<ShapeLogState> {
  return logStateReads(cdcSlotName, () => readLogState(sql, cdcSlotName));
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
  return { position: snapshotStartOf(head, state), state };
}

/** Where a snapshot starting now starts, given the log head: never behind the retention watermark. */
export function snapshotStartOf(
  head: LogPosition,
  state: Pick<ShapeLogState, 'prunedThroughLsn'>,
): LogPosition {
  return isPruned(head, state) ? { lsn: state.prunedThroughLsn, position: 0 } : head;
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

/**
 * Live rows, each as its insert message's JSON text, built by PostgreSQL: every value is
 * `col::text` (Electric's encoding) through `to_json`, so the API only joins the rows. Writing
 * the JSON in Node from the text columns took twice as long for a 10,000-row chunk (the driver
 * parsing every column, then a `JSON.stringify` per value); `json_build_object` was slower
 * still. The rows come raw (the driver's bytes, never decoded into strings): the API writes
 * them as they came. Where the next chunk continues is read from the last message itself
 * (`cursorOf`): two more columns per row cost PostgreSQL their text and the API two buffers a
 * row, for one row a chunk. A narrowed row without `created_at` selects it beside the message.
 */
function snapshotMessagesQuery(
  sql: Queryable,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
  options: { where?: Fragment; orderBy?: Fragment | null; page: Fragment },
): postgres.PendingRawQuery<MessageRow[]> {
  const createdAt = tracked.table.createdAt.name;
  const cursorColumn = columns.names.includes(createdAt)
    ? sql``
    : sql`, ${sql(createdAt)}::text as cursor_created_at`;
  // output names differ from the columns', so ORDER BY sorts by the columns, not their text
  return sql<MessageRow[]>`select ${insertMessageSql(sql, tracked, columns)} as message${cursorColumn}
     from ${sql(tracked.tableName)}
     where organization_id = ${organizationId} and deleted_at is null and ${options.where ?? sql`true`}
     order by ${options.orderBy ? sql`${options.orderBy}, id` : sql`created_at, id`}
     ${options.page}`.raw();
}

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** SQL for one row's insert message as JSON text, byte for byte what `changeMessage` would encode. */
function insertMessageSql(sql: Queryable, tracked: TrackedTable, columns: ShapeColumns): Fragment[] {
  const selected = (Object.values(getTableColumns(tracked.table)) as PgColumn[]).filter((column) =>
    columns.names.includes(column.name),
  );
  const value = selected.map((column, i) => {
    const json = sql`to_json(${sql(column.name)}::text)::text`;
    const name = `${i ? ',' : ''}${JSON.stringify(column.name)}:`;
    return sql` || ${name}::text || ${column.notNull ? json : sql`coalesce(${json}, 'null')`}`;
  });
  const keyPrefix = messageKey(tracked, '').slice(0, -1);
  return [
    sql`'{"key":' || to_json(${keyPrefix}::text || replace(id, '"', '""') || '"')::text || ',"value":{'`,
    ...value,
    sql` || '},"headers":{"operation":"insert"}}'`,
  ];
}

/** A row of `snapshotMessagesQuery` (raw: its columns' bytes): the message, then `created_at` when the message lacks it. */
type MessageRow = Buffer[];

const CursorOfMessage = z.object({ value: z.object({ created_at: z.string().optional(), id: z.string() }) });

/** The (created_at, id) of a snapshot row, from its message: `created_at` is its `::text` there too. */
function cursorOf(row: MessageRow): SnapshotCursor {
  const { value } = CursorOfMessage.parse(JSON.parse(messageOf(row).toString()));
  const createdAt = row[1]?.toString() ?? value.created_at;
  if (createdAt === undefined) throw new Error('a snapshot row came without its created_at');
  return { createdAt, id: value.id };
}

function messageOf([message]: MessageRow): Buffer {
  if (!message) throw new Error('a snapshot row came without its message');
  return message;
}

const READ_ONLY_SNAPSHOT = 'isolation level repeatable read read only';

/** Where a chunked snapshot continues: the (created_at, id) of the last row sent. */
export interface SnapshotCursor {
  createdAt: string;
  id: string;
}

export interface SnapshotChunk {
  /** Insert messages as UTF-8 JSON text, at most `limit` of them. */
  messages: Buffer[];
  /** Set when more rows follow: the cursor of the last one sent. */
  next: SnapshotCursor | null;
  /** The visibility of this chunk's own snapshot: every transaction it sees is in its rows. */
  visibility: SnapshotVisibility;
}

/**
 * One chunk of the organization's live rows in (created_at, id) order, after `after`. A chunk
 * is at most `limit` rows in memory; the client fetches the next while it processes this one.
 */
export function readSnapshotChunk(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  columns: ShapeColumns,
  after: SnapshotCursor | null,
  limit: number,
): Promise<SnapshotChunk> {
  return sql.begin(READ_ONLY_SNAPSHOT, async (tx) => {
    const visibility = await readVisibility(tx);
    const rows = await snapshotMessagesQuery(tx, tracked, columns, organizationId, {
      where: after
        ? tx`(created_at, id) > (${after.createdAt}::text::timestamptz, ${after.id}::text)`
        : undefined,
      page: tx`limit ${limit + 1}`,
    });
    const messages = rows.slice(0, limit).map(messageOf);
    const last = rows[limit - 1];
    const next = rows.length > limit && last ? cursorOf(last) : null;
    return { messages, next, visibility };
  });
}

export interface SubsetSnapshot {
  position: LogPosition;
  state: ShapeLogState;
  visibility: SnapshotVisibility;
  messages: Buffer[];
}

/**
 * A subset of the live rows, with the log position and visibility of the same snapshot: the
 * client merges it with the log after that position and skips changes the snapshot saw.
 */
export function readSubsetSnapshot(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  columns: ShapeColumns,
  cdcSlotName: string,
  subset: SubsetRequest,
): Promise<SubsetSnapshot> {
  return sql.begin(READ_ONLY_SNAPSHOT, async (tx) => {
    const visibility = await readVisibility(tx);
    const state = await readLogState(tx, cdcSlotName);
    const head = await readLogHead(tx, organizationId);
    const compiled = compileSubset(tx, tracked, subset);
    const rows = await snapshotMessagesQuery(tx, tracked, columns, organizationId, {
      ...compiled,
      page:
        subset.limit === null
          ? tx`offset ${subset.offset}`
          : tx`limit ${subset.limit} offset ${subset.offset}`,
    });
    return { position: snapshotStartOf(head, state), state, visibility, messages: rows.map(messageOf) };
  });
}

const logPageReads = singleFlight<EncodedLogPage | null>();

/**
 * The page of log entries after a position, oldest first, encoded (`encodeLogPage`); null when
 * a truncation is among them (the log was renamed: the request answers must-refetch). Concurrent
 * identical reads share one query and one encoding: after a change, every live request of the
 * shape at that offset is answered with the same body. A reader woken by a batch's notification
 * at `notifiedAt` only shares a read started since, so it never gets an older read's empty page
 * and sleeps until the next recheck.
 */
export function readLogPage(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  columns: ShapeColumns,
  after: LogPosition,
  limit: number,
  notifiedAt?: number,
): Promise<EncodedLogPage | null> {
  const key = `${organizationId}|${tracked.entityType}|${columns.key}|${activityId(after)}|${limit}`;
  return logPageReads(
    key,
    async () => {
      const readAt = performance.now();
      const entries = await readLog(sql, organizationId, tracked, after, limit);
      if (!onlyChanges(entries)) return null;
      const page = encodeLogPage(tracked, columns, entries, after, limit);
      if (page.upToDate !== null) rememberLogEnd(organizationId, tracked, page.last, readAt);
      return page;
    },
    notifiedAt,
  );
}

/**
 * Where each shape's log ended at its latest read that reached the end, and when that read
 * started: a live client's next request comes at exactly that offset, and while no batch of
 * the organization was notified since (activity-notifier.ts, `notifiedSince`), reading again
 * would find nothing, so that request can wait at once. Bounded; the oldest are forgotten.
 */
const logEnds = new Map<string, { end: string; readAt: number }>();
const REMEMBERED_LOG_ENDS = 10_000;

function rememberLogEnd(organizationId: string, tracked: TrackedTable, end: LogPosition, readAt: number) {
  const key = `${organizationId}|${tracked.entityType}`;
  const known = logEnds.get(key);
  if (known && known.readAt > readAt) return;
  logEnds.delete(key);
  logEnds.set(key, { end: activityId(end), readAt });
  if (logEnds.size > REMEMBERED_LOG_ENDS) {
    const [oldest] = logEnds.keys();
    if (oldest !== undefined) logEnds.delete(oldest);
  }
}

/** When a read that started then found the shape's log ending exactly at `at` (undefined: not known). */
export function logEndReadAt(
  organizationId: string,
  tracked: TrackedTable,
  at: LogPosition,
): number | undefined {
  const known = logEnds.get(`${organizationId}|${tracked.entityType}`);
  return known?.end === activityId(at) ? known.readAt : undefined;
}

/** Log entries after a position, oldest first. */
async function readLog(
  sql: Sql,
  organizationId: string,
  tracked: TrackedTable,
  after: LogPosition,
  limit: number,
): Promise<LogEntry[]> {
  const rows = await sql<
    {
      lsn: string;
      position: number;
      action: LogEntry['action'];
      entity_id: string;
      row: Record<string, unknown>;
      changed_keys: string[];
      xid: string;
      restored: boolean;
    }[]
  >`
    select lsn::text as lsn, position, action, entity_id, row, changed_keys, xid,
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
    changedKeys: r.changed_keys,
    xid: Number(r.xid),
    restored: r.restored,
  }));
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

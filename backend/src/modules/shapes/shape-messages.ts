/**
 * Pure mapping between our rows/activities and Electric shape messages. Electric sends every
 * column value as PostgreSQL's text output (`col::text`) or null; the client parses by the
 * schema header (int8 → BigInt, bool from "t", json/jsonb with JSON.parse).
 */
import { z } from '@hono/zod-openapi';
import { parseActivityId } from '@sync/db/lsn';
import { memoized } from '@sync/db/memo';
import { BOOKKEEPING_COLUMNS, type TrackedTable } from '@sync/db/tracked-tables';
import { getTableColumns } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { ACTIVITY_CURSOR } from '../activities/activity-schema.ts';
import { CONTROL, LIVE_CURSOR_INTERVAL_MS, OFFSET_BEFORE_ALL, OFFSET_NOW } from './electric-protocol.ts';
import type { ShapeColumns } from './shape-columns.ts';

export interface ColumnSchema {
  type: string;
  pk_index?: number;
  not_null?: boolean;
}

const ELECTRIC_TYPE: Record<string, string> = {
  text: 'text',
  'timestamp with time zone': 'timestamptz',
  jsonb: 'jsonb',
  json: 'json',
  bigint: 'int8',
  integer: 'int4',
  smallint: 'int2',
  boolean: 'bool',
  'double precision': 'float8',
  real: 'float4',
};

const schemaHeaders = new Map<string, string>();

/**
 * The `electric-schema` header value of a shape, made once per table and column set (at most
 * one per subset of a table's columns): every request of a shape carries it, and a live
 * re-arm is answered in a few hundred µs.
 */
export function shapeSchemaHeader(tracked: TrackedTable, columns: ShapeColumns): string {
  return memoized(schemaHeaders, `${tracked.entityType}|${columns.key}`, () =>
    JSON.stringify(shapeSchema(tracked, columns)),
  );
}

/** A shape's columns of the tracked table with their Electric types, from the drizzle definition. */
function shapeSchema(tracked: TrackedTable, columns: ShapeColumns): Record<string, ColumnSchema> {
  const schema: Record<string, ColumnSchema> = {};
  for (const column of Object.values(getTableColumns(tracked.table)) as PgColumn[]) {
    if (!columns.names.includes(column.name)) continue;
    const type = ELECTRIC_TYPE[column.getSQLType()] ?? column.getSQLType();
    schema[column.name] = {
      type,
      ...(column.primary ? { pk_index: 0 } : {}),
      ...(column.notNull ? { not_null: true } : {}),
    };
  }
  return schema;
}

/** A decoded column value (as the CDC worker stores it in `activities.row`) in Electric's text form. */
export function encodeValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

export function messageKey(tracked: TrackedTable, id: string): string {
  return `"public"."${tracked.tableName}"/"${id.replaceAll('"', '""')}"`;
}

export interface LogEntry {
  lsn: string;
  position: number;
  /** `truncate`: the table was truncated; the log's handle changed with it, so clients refetch. */
  action: 'create' | 'update' | 'delete' | 'truncate';
  entityId: string;
  row: Record<string, unknown>;
  /** The columns an update changed, bookkeeping columns aside (the activity's `changed_keys`). */
  changedKeys: string[];
  xid: number;
  /** An update that cleared `deleted_at`: the row enters the shape again. */
  restored: boolean;
}

const OPERATION = { create: 'insert', update: 'update', delete: 'delete' } as const;

export type ChangeEntry = LogEntry & { action: Exclude<LogEntry['action'], 'truncate'> };

/**
 * False when a truncation is among the entries: rows the client holds may be gone, so the
 * request answers must-refetch (the log was renamed with it) instead of change messages.
 */
export function onlyChanges(entries: LogEntry[]): entries is ChangeEntry[] {
  return entries.every((entry) => entry.action !== 'truncate');
}

/**
 * One activity as a change message. Shapes hold live rows only, so (as Electric does for rows
 * leaving and entering a shape's where clause) a soft delete is a delete and a restore an insert.
 */
export function changeMessage(tracked: TrackedTable, columns: readonly string[], entry: ChangeEntry) {
  const value: Record<string, string | null> = {};
  for (const column of columns) value[column] = encodeValue(entry.row[column]);
  return {
    key: messageKey(tracked, entry.entityId),
    value,
    headers: {
      operation: entry.restored ? 'insert' : OPERATION[entry.action],
      relation: ['public', tracked.tableName],
      lsn: entry.lsn,
      op_position: entry.position,
      txids: [entry.xid],
    },
  };
}

const bookkeeping: ReadonlySet<string> = new Set(BOOKKEEPING_COLUMNS);

/**
 * Whether a change shows in the shape's rows. As Electric does for a shape with `columns`, an
 * update that changed none of the shape's columns is not sent (the client's row would not
 * change). The log lists the columns an update changed without the bookkeeping ones, which
 * every write stamps, so a set with a bookkeeping column gets every update; a restore (it
 * enters the shape) and every insert and delete are always sent.
 */
export function changesShape(entry: ChangeEntry, columns: ShapeColumns): boolean {
  if (columns.digest === null || entry.action !== 'update' || entry.restored) return true;
  return columns.names.some((name) => bookkeeping.has(name) || entry.changedKeys.includes(name));
}

/**
 * A page of one shape's log encoded once, for every request that reads the same entries: a
 * long-poll response's body, or an SSE stream's events. Same entries → same bytes, so
 * identical live requests get identical responses (cacheable, and written without re-encoding).
 */
export interface EncodedLogPage {
  /** The change messages as JSON text, oldest first (one SSE event each). */
  changes: string[];
  /** The up-to-date message as JSON text when the page reached the head of the log; null when more follow. */
  upToDate: string | null;
  /** The last entry, or the position read after when the page is empty. */
  last: { lsn: string; position: number };
  /** The long-poll body: the changes, then up-to-date when there is one. */
  body: string;
}

/**
 * Entries read with `limit` after `after` (fewer than `limit`: the head of the log was reached),
 * as the shape's messages. The page ends at its last entry even when that entry is not sent
 * (`changesShape`), so the client's next request starts after it.
 */
export function encodeLogPage(
  tracked: TrackedTable,
  columns: ShapeColumns,
  entries: ChangeEntry[],
  after: { lsn: string; position: number },
  limit: number,
): EncodedLogPage {
  const changes = entries
    .filter((entry) => changesShape(entry, columns))
    .map((entry) => JSON.stringify(changeMessage(tracked, columns.names, entry)));
  const lastEntry = entries.at(-1);
  const last = lastEntry ? { lsn: lastEntry.lsn, position: lastEntry.position } : after;
  const upToDate = entries.length < limit ? JSON.stringify(upToDateMessage(last.lsn)) : null;
  const body = `[${(upToDate === null ? changes : [...changes, upToDate]).join(',')}]`;
  return { changes, upToDate, last, body };
}

/**
 * A JSON array of messages as UTF-8 bytes: `messages` (each one message's JSON text, as
 * PostgreSQL builds snapshot rows), then `more` (control messages), copied once.
 */
export function messageArray(messages: Buffer[], more: object[] = []): Buffer<ArrayBuffer> {
  const parts: Buffer[] = [OPEN_ARRAY];
  for (const message of [...messages, ...more.map((m) => Buffer.from(JSON.stringify(m)))]) {
    if (parts.length > 1) parts.push(COMMA);
    parts.push(message);
  }
  parts.push(CLOSE_ARRAY);
  return Buffer.concat(parts);
}

const OPEN_ARRAY = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE_ARRAY = Buffer.from(']');

export function upToDateMessage(lsn: string) {
  return { headers: { control: CONTROL.upToDate, global_last_seen_lsn: lsn } };
}

/** Closes a snapshot: which transactions it saw, so `awaitTxId` settles for rows that came in it. */
export function snapshotEndMessage(visibility: { xmin: string; xmax: string; xip_list: string[] }) {
  return { headers: { control: CONTROL.snapshotEnd, ...visibility } };
}

/**
 * The `metadata` of a subset snapshot response, as `fetchSnapshot()` reads it: the client
 * drops later log changes the snapshot already saw, until the log passes `database_lsn`.
 */
export function subsetMetadata(snapshot: {
  position: { lsn: string };
  visibility: { xmin: string; xmax: string; xip_list: string[] };
}) {
  return {
    snapshot_mark: Math.floor(Math.random() * 2 ** 31),
    database_lsn: snapshot.position.lsn,
    ...snapshot.visibility,
  };
}

export const MUST_REFETCH = [{ headers: { control: CONTROL.mustRefetch } }];

/**
 * Where the next chunk of a chunked snapshot starts, carried in the chunk's `electric-offset`:
 * the log position the snapshot started at (its changes follow the last chunk), the last row
 * sent, the first chunk's visibility (seen by every later chunk too, so it stays true of
 * the whole snapshot; `snapshot-end` carries it) and how many rows the next chunk holds (chunks
 * grow: absent in offsets written before they did, which then get the full size).
 */
export interface SnapshotChunkOffset {
  start: { lsn: string; position: number };
  after: { createdAt: string; id: string };
  visibility: { xmin: string; xmax: string; xip_list: string[] };
  rows?: number | undefined;
}

const SNAPSHOT_OFFSET_PREFIX = 'snapshot_';
/** Above this many in-progress transactions, the offset claims only `xid < xmin` as seen. */
const MAX_XIP_IN_OFFSET = 32;
const Digits = z.string().regex(/^\d{1,20}$/);
const SnapshotChunkOffsetSchema = z.object({
  start: z.object({
    lsn: Digits,
    position: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
  }),
  after: z.object({ createdAt: z.string().max(64), id: z.string().max(64) }),
  visibility: z.object({ xmin: Digits, xmax: Digits, xip_list: z.array(Digits).max(MAX_XIP_IN_OFFSET) }),
  rows: z.number().int().min(1).max(1_000_000).optional(),
});

export function snapshotChunkOffset(offset: SnapshotChunkOffset): string {
  const { visibility } = offset;
  const bounded =
    visibility.xip_list.length > MAX_XIP_IN_OFFSET
      ? { xmin: visibility.xmin, xmax: visibility.xmin, xip_list: [] }
      : visibility;
  const json = JSON.stringify({ ...offset, visibility: bounded });
  return SNAPSHOT_OFFSET_PREFIX + Buffer.from(json).toString('base64url');
}

function parseSnapshotChunkOffset(offset: string): SnapshotChunkOffset | null {
  try {
    const json = Buffer.from(offset.slice(SNAPSHOT_OFFSET_PREFIX.length), 'base64url').toString();
    const parsed = SnapshotChunkOffsetSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export type ShapeOffset =
  | { kind: 'before-all' }
  | { kind: 'now' }
  | { kind: 'log'; lsn: string; position: number }
  | ({ kind: 'snapshot-chunk' } & SnapshotChunkOffset);

/** `-1`, `now`, an activity id `<lsn>_<position>` or a snapshot chunk's offset; anything else is not an offset. */
export function parseShapeOffset(offset: string | undefined): ShapeOffset | null {
  if (offset === OFFSET_BEFORE_ALL) return { kind: 'before-all' };
  if (offset === OFFSET_NOW) return { kind: 'now' };
  if (offset?.startsWith(SNAPSHOT_OFFSET_PREFIX) && offset.length < 2_048) {
    const chunk = parseSnapshotChunkOffset(offset);
    return chunk ? { kind: 'snapshot-chunk', ...chunk } : null;
  }
  if (!offset || !ACTIVITY_CURSOR.test(offset)) return null;
  const { lsn, position } = parseActivityId(offset);
  return { kind: 'log', lsn: BigInt(lsn).toString(), position };
}

/** Electric's cache buster for live responses: must differ from the request's cursor. */
export function nextCursor(requestCursor: string | undefined, now = Date.now()): string {
  const cursor = String(Math.floor(now / LIVE_CURSOR_INTERVAL_MS));
  return cursor === requestCursor ? String(Number(cursor) + 1) : cursor;
}

/**
 * The change → activity mapping, pure: one pgoutput change of a tracked table and its place in
 * the source transaction give one activity row and the entity-count deltas it implies. No I/O,
 * no clock: the same WAL always maps to the same rows (guarantee 3).
 *
 *   insert                          → <type>.created  action create
 *   update, deleted_at null → set   → <type>.deleted  action delete   (soft delete)
 *   update, otherwise               → <type>.updated  action update   (an undelete is an update)
 *   delete                          → <type>.deleted  action delete   (hard delete: row = old row)
 *
 * An undo is an ordinary write of one of these kinds; its row's `transactions.undo` is
 * `{ transactionId, undoes }`, and the activity whose transaction id is that `transactionId`
 * names `undoes` as the transaction it undid (later writes leave the stale entry behind).
 */

import { memoized } from '@sync/db/memo';
import type { ActivityRow } from '@sync/db/schema';
import { BOOKKEEPING_COLUMNS, type TrackedTable, trackedTables } from '@sync/db/tracked-tables';
import { columnValueJson, sameColumnValue } from './column-values.ts';

/** What a row change is; a TRUNCATE becomes activities of action `truncate` (`truncationsOf`). */
export type ActivityAction = 'create' | 'update' | 'delete';

/**
 * An `activities` row as the worker writes it: `row` and `previous_values` are their JSON text,
 * built straight from the WAL's text values, and `created_at` is the commit time as the WAL has
 * it (the COPY row embeds them as they are: no text form of the time is made per change).
 */
export type MappedActivity = Omit<ActivityRow, 'row' | 'previousValues' | 'createdAt'> & {
  rowJson: string;
  previousValuesJson: string | null;
  /** `created_at`: the source transaction's commit, microseconds since 1970. */
  commitTime: bigint;
};

export type RowValues = Record<string, unknown>;

export interface ChangeRelation {
  schema: string;
  name: string;
  columns: readonly { name: string; typeOid: number }[];
}

/** The pgoutput insert/update/delete messages (as pg-logical-replication parses them). */
export type RowChange =
  | { tag: 'insert'; relation: ChangeRelation; new: RowValues }
  | { tag: 'update'; relation: ChangeRelation; old: RowValues | null; new: RowValues }
  | { tag: 'delete'; relation: ChangeRelation; old: RowValues | null; key?: RowValues | null };

/** Where a change sits in the WAL. */
export interface ChangeContext {
  /** LSN of the source transaction's commit record. */
  commitLsn: bigint;
  /** Index of the change in its transaction, from 0. */
  position: number;
  /** Commit time as pg-logical-replication gives it: microseconds since 1970-01-01 (a BigInt). */
  commitTime: bigint;
  /** Transaction id from the begin message (pgoutput sends a 32-bit xid; the parser reads it signed). */
  xid: number;
}

export interface CountDelta {
  organizationId: string;
  entityType: string;
  delta: number;
}

/**
 * Positions a TRUNCATE reserves per tracked table. Which organizations lost rows is known only
 * to the database (entity_counts), so the sink writes one `<type>.truncated` activity per such
 * organization at `position`, `position + 1`, …; the WAL alone fixes every key, so a replay
 * maps to the same rows.
 */
export const TRUNCATE_POSITION_SPAN = 1 << 20;

/** A TRUNCATE of one tracked table: its counts drop to 0 and every organization's feed shows it. */
export interface TableTruncation {
  entityType: string;
  /** `<type>.truncated` */
  type: string;
  lsn: bigint;
  /** The first of the TRUNCATE_POSITION_SPAN positions reserved for it. */
  position: number;
  xid: number;
  createdAt: string;
}

/** What one change does to entity_counts, in transaction order. */
export type CountChange = CountDelta | TableTruncation;

export function isTruncation(change: CountChange): change is TableTruncation {
  return 'position' in change;
}

/** Column names of `trackedColumns()` in schema.ts, which every tracked table shares. */
interface TrackedColumnNames {
  id: string;
  organizationId: string;
  createdBy: string;
  modifiedBy: string;
  deletedAt: string;
  transactions: string;
  lastClientId: string;
}

interface TrackedRelation {
  tracked: TrackedTable;
  columns: TrackedColumnNames;
  /** `<type>.created` etc., built once. */
  types: Record<ActivityAction, string>;
}

const bookkeeping: ReadonlySet<string> = new Set(BOOKKEEPING_COLUMNS);

const trackedByName = new Map<string, TrackedRelation>(
  trackedTables.map((tracked) => {
    const { table } = tracked;
    const columns: TrackedColumnNames = {
      id: table.id.name,
      organizationId: table.organizationId.name,
      createdBy: table.createdBy.name,
      modifiedBy: table.modifiedBy.name,
      deletedAt: table.deletedAt.name,
      transactions: table.transactions.name,
      lastClientId: table.lastClientId.name,
    };
    const types = {
      create: `${tracked.entityType}.created`,
      update: `${tracked.entityType}.updated`,
      delete: `${tracked.entityType}.deleted`,
    };
    return [tracked.tableName, { tracked, columns, types }];
  }),
);

/** Tracked tables live in the default schema. */
function trackedRelation(relation: ChangeRelation): TrackedRelation | undefined {
  return relation.schema === 'public' ? trackedByName.get(relation.name) : undefined;
}

const TRANSACTION_KEY: Record<ActivityAction, 'insert' | 'update' | 'delete'> = {
  create: 'insert',
  update: 'update',
  delete: 'delete',
};

/** The activity for one change, or null when the table is not tracked. */
export function activityFromChange(change: RowChange, context: ChangeContext): MappedActivity | null {
  const relation = trackedRelation(change.relation);
  if (!relation) return null;
  const { tracked, columns, types } = relation;

  const before = change.tag === 'insert' ? null : (change.old ?? null);
  const after = change.tag === 'delete' ? null : change.new;
  const action = actionOf(change, before, after, columns);
  // A hard delete without the old row (replica identity not FULL) still has the key.
  const current = after ?? before ?? (change.tag === 'delete' ? (change.key ?? {}) : {});
  const changedKeys = changedKeysOf(change, before, after);

  const transactions = transactionsOf(current[columns.transactions]);
  const transactionId = transactions?.[TRANSACTION_KEY[action]];
  const userId =
    action === 'create'
      ? current[columns.createdBy]
      : (current[columns.modifiedBy] ?? current[columns.createdBy]);

  return {
    lsn: context.commitLsn,
    position: context.position,
    type: types[action],
    action,
    entityType: tracked.entityType,
    entityId: String(current[columns.id] ?? ''),
    organizationId: String(current[columns.organizationId] ?? ''),
    userId: textOrNull(userId),
    transactionId: textOrNull(transactionId),
    clientId: textOrNull(current[columns.lastClientId]),
    changedKeys,
    rowJson: rowJsonOf(change.relation, current),
    previousValuesJson: tracked.keepPreviousValues
      ? previousValuesJsonOf(change.relation, before, after, changedKeys)
      : null,
    undoesTransactionId: change.tag === 'delete' ? null : undoneBy(transactions, transactionId),
    xid: context.xid >>> 0,
    commitTime: context.commitTime,
  };
}

type Transactions = Partial<Record<string, unknown>>;

/** The `transactions` jsonb: its text from the WAL (or a value a caller already parsed). */
function transactionsOf(value: unknown): Transactions | null {
  const parsed: unknown = typeof value === 'string' ? (flatStampOf(value) ?? JSON.parse(value)) : value;
  return typeof parsed === 'object' && parsed !== null ? (parsed as Transactions) : null;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const SPACE = 0x20;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * The stamp as the API writes it, read without JSON.parse: jsonb's text output of one flat
 * object whose values are strings or null, `{"delete": null, "insert": "tx_1", "update": null}`.
 * Anything else (an undo's nested object, a backslash escape, other spacing) gives undefined,
 * and JSON.parse reads it; so the result is always JSON.parse's.
 */
export function flatStampOf(text: string): Transactions | undefined {
  if (text.charCodeAt(0) !== OPEN_BRACE) return undefined;
  const stamp: Transactions = {};
  let at = 1;
  if (text.charCodeAt(at) === CLOSE_BRACE) return text.length === 2 ? stamp : undefined;
  for (;;) {
    if (text.charCodeAt(at) !== QUOTE) return undefined;
    const keyEnd = text.indexOf('"', at + 1);
    if (keyEnd < 0) return undefined;
    const key = text.slice(at + 1, keyEnd);
    if (key.includes('\\') || key === '__proto__') return undefined;
    if (text.charCodeAt(keyEnd + 1) !== COLON || text.charCodeAt(keyEnd + 2) !== SPACE) return undefined;
    at = keyEnd + 3;
    if (text.charCodeAt(at) === QUOTE) {
      const end = text.indexOf('"', at + 1);
      if (end < 0) return undefined;
      const value = text.slice(at + 1, end);
      if (value.includes('\\')) return undefined;
      stamp[key] = value;
      at = end + 1;
    } else if (text.startsWith('null', at)) {
      stamp[key] = null;
      at += 4;
    } else {
      return undefined;
    }
    const next = text.charCodeAt(at);
    if (next === CLOSE_BRACE) return at + 1 === text.length ? stamp : undefined;
    if (next !== COMMA || text.charCodeAt(at + 1) !== SPACE) return undefined;
    at += 2;
  }
}

/** The transaction an undo undid, when this change is that undo. */
function undoneBy(transactions: Transactions | null, transactionId: unknown) {
  const undo = transactions?.undo as Partial<Record<string, unknown>> | null | undefined;
  if (!undo || typeof undo !== 'object' || transactionId == null) return null;
  return undo.transactionId === transactionId ? textOrNull(undo.undoes) : null;
}

/**
 * What a change does to the live-entity counts: a live row appearing counts +1 for its
 * organization, a live row disappearing (soft or hard delete) −1, an undelete +1.
 */
export function countDeltasOfChange(change: RowChange): CountDelta[] {
  const relation = trackedRelation(change.relation);
  if (!relation) return [];
  const { tracked, columns } = relation;
  const after = change.tag === 'delete' ? null : change.new;
  // Without the old row (replica identity not FULL) assume the liveness did not change.
  const before = change.tag === 'insert' ? null : (change.old ?? (change.tag === 'update' ? after : null));
  const wasLiveIn = liveOrganizationOf(before, columns);
  const isLiveIn = liveOrganizationOf(after, columns);
  if (wasLiveIn === isLiveIn) return [];
  const deltas: CountDelta[] = [];
  if (wasLiveIn !== null)
    deltas.push({ organizationId: wasLiveIn, entityType: tracked.entityType, delta: -1 });
  if (isLiveIn !== null) deltas.push({ organizationId: isLiveIn, entityType: tracked.entityType, delta: 1 });
  return deltas;
}

/** The organization a row is live in (null: no row, or soft-deleted). */
function liveOrganizationOf(values: RowValues | null, columns: TrackedColumnNames): string | null {
  return values && isNull(values[columns.deletedAt]) ? String(values[columns.organizationId]) : null;
}

/**
 * The tracked tables of a TRUNCATE message (pgoutput sends one for all the tables of one
 * statement), each with its block of positions from `context.position` on.
 */
export function truncationsOf(
  relations: readonly ChangeRelation[],
  context: ChangeContext,
): TableTruncation[] {
  const tracked = relations.flatMap((relation) => trackedRelation(relation)?.tracked ?? []);
  return tracked.map((table, i) => ({
    entityType: table.entityType,
    type: `${table.entityType}.truncated`,
    lsn: context.commitLsn,
    position: context.position + i * TRUNCATE_POSITION_SPAN,
    xid: context.xid >>> 0,
    createdAt: isoFromMicros(context.commitTime),
  }));
}

function actionOf(
  change: RowChange,
  before: RowValues | null,
  after: RowValues | null,
  columns: TrackedColumnNames,
): ActivityAction {
  if (change.tag === 'insert') return 'create';
  if (change.tag === 'delete') return 'delete';
  const softDeleted =
    before !== null && isNull(before[columns.deletedAt]) && !isNull(after?.[columns.deletedAt]);
  return softDeleted ? 'delete' : 'update';
}

/**
 * Columns whose value really changed, bookkeeping excluded. A create lists its non-null
 * columns; an update without the old row (replica identity not FULL) lists every column it has.
 */
function changedKeysOf(change: RowChange, before: RowValues | null, after: RowValues | null): string[] {
  if (!after) return [];
  const keys: string[] = [];
  for (const { name } of change.relation.columns) {
    if (bookkeeping.has(name) || after[name] === undefined) continue;
    if (before === null) {
      if (change.tag === 'insert' ? !isNull(after[name]) : true) keys.push(name);
    } else if (!sameColumnValue(before[name], after[name])) {
      keys.push(name);
    }
  }
  return keys;
}

function previousValuesJsonOf(
  relation: ChangeRelation,
  before: RowValues | null,
  after: RowValues | null,
  changedKeys: readonly string[],
): string | null {
  if (!before || !after || changedKeys.length === 0) return null;
  const keys = jsonKeysOf(relation);
  let json = '';
  const { columns } = relation;
  for (let i = 0; i < columns.length; i++) {
    const { name, typeOid } = columns[i] as ChangeRelation['columns'][number];
    if (changedKeys.includes(name))
      json += `${json === '' ? '{' : ','}${keys[i]}:${columnValueJson(typeOid, before[name])}`;
  }
  return `${json}}`;
}

/** Column name → JSON value, in the table's column order; columns without a value are left out. */
function rowJsonOf(relation: ChangeRelation, values: RowValues): string {
  const keys = jsonKeysOf(relation);
  let json = '';
  const { columns } = relation;
  for (let i = 0; i < columns.length; i++) {
    const { name, typeOid } = columns[i] as ChangeRelation['columns'][number];
    const value = values[name];
    if (value !== undefined)
      json += `${json === '' ? '{' : ','}${keys[i]}:${columnValueJson(typeOid, value)}`;
  }
  return json === '' ? '{}' : `${json}}`;
}

/** The relation's column names as JSON strings, built once per relation message. */
const jsonKeys = new WeakMap<ChangeRelation, string[]>();

function jsonKeysOf(relation: ChangeRelation): string[] {
  return memoized(jsonKeys, relation, () => relation.columns.map(({ name }) => JSON.stringify(name)));
}

let lastMicros = -1n;
let lastIso = '';
let lastSecond = -1;
let lastSecondIso = '';

/** `2024-05-01T10:00:00.123456Z` from microseconds since the Unix epoch. */
export function isoFromMicros(micros: bigint): string {
  // The changes of one transaction share their commit time, and a catch-up's transactions
  // mostly share their second: remember the last conversion and the last second's text.
  if (micros === lastMicros) return lastIso;
  // microseconds since 1970 stay exact in a double until the year 2255
  const exact = Number(micros);
  const second = Math.floor(exact / 1_000_000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastSecondIso = new Date(second * 1000).toISOString().slice(0, -5);
  }
  lastMicros = micros;
  lastIso = `${lastSecondIso}.${String(exact - second * 1_000_000).padStart(6, '0')}Z`;
  return lastIso;
}

function isNull(value: unknown): boolean {
  return value === null || value === undefined;
}

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/**
 * The `columns` parameter of a shape request: which of the entity's own columns its rows carry.
 * It can only narrow the row, never widen it, and it is never SQL text: each name is looked up
 * among the table's columns, and only those names (through `sql(name)`) reach a query.
 *
 *   columns := column ( ',' column )*          (what the official client sends: "id","title")
 *   column  := '"' ( any but '"' | '""' )+ '"' (exact name)
 *            | [A-Za-z_][A-Za-z0-9_$]*         (unquoted: lowercased, as PostgreSQL reads it)
 *
 *   absent ─────────────────────────────► every column (the full row)
 *   parsed ─┬─ a name not of the table ──► 400 "not found on the table: x"
 *           ├─ the primary key missing ──► 400 "must include the primary key column: id"
 *           └─ otherwise ────────────────► the set in table order (duplicates dropped);
 *                                          every column named: the full row, as if absent
 *
 * Electric's rules (its `columns` parameter): the primary key must be included, an unknown
 * column is a 400. A narrowed set names its own shape: its handle carries a digest of the set
 * (`shapeHandle`), so one column set's bytes are never served for another.
 */
import { createHash } from 'node:crypto';
import { memoized } from '@sync/db/memo';
import type { TrackedTable } from '@sync/db/tracked-tables';
import { getTableColumns } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { ELECTRIC_PARAM } from './electric-protocol.ts';

export interface ShapeColumns {
  /** The columns a row carries, in table order. */
  names: readonly string[];
  /** Null for the full row; else a short digest of the set, part of the shape's handle. */
  digest: string | null;
  /** Names the set in cache and read keys: every shape of one set shares its reads and bytes. */
  key: string;
}

/** Longer than any list of a table's columns; a longer parameter is refused before parsing. */
const MAX_COLUMNS_TEXT = 4_096;

function tableColumns(tracked: TrackedTable): PgColumn[] {
  return Object.values(getTableColumns(tracked.table)) as PgColumn[];
}

const fullRows = new WeakMap<TrackedTable, ShapeColumns>();

/** The full row: every column of the entity's table (built once per table: most requests ask for it). */
export function allColumns(tracked: TrackedTable): ShapeColumns {
  return memoized(fullRows, tracked, () => {
    const names = tableColumns(tracked).map((column) => column.name);
    return { names, digest: null, key: names.join(',') };
  });
}

function invalid(message: string): AppError {
  return new AppError(400, ERROR_CODE.validationFailed, `${ELECTRIC_PARAM.columns}: ${message}`, {
    issues: [{ path: [ELECTRIC_PARAM.columns], message }],
  });
}

const COLUMN_NAME = /\s*(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))\s*(,|$)/y;

/** The names of a `columns` parameter, in the order given: exactly what was asked for. */
export function parseColumnNames(text: string): string[] {
  if (text.length > MAX_COLUMNS_TEXT) throw invalid(`longer than ${MAX_COLUMNS_TEXT} characters`);
  const names: string[] = [];
  let at = 0;
  while (at < text.length || names.length === 0) {
    COLUMN_NAME.lastIndex = at;
    const match = COLUMN_NAME.exec(text);
    if (!match || match[0] === '') {
      throw invalid(`expected a column name at position ${at}: ${JSON.stringify(text.slice(at, at + 20))}`);
    }
    const [, quoted, bare = '', separator] = match;
    names.push(quoted === undefined ? bare.toLowerCase() : quoted.replaceAll('""', '"'));
    at = COLUMN_NAME.lastIndex;
    if (separator === ',' && at === text.length) throw invalid('expected a column name after the last comma');
  }
  return names;
}

/**
 * The column set of a request: absent → the full row; else the named columns of the entity's
 * table, which must include its primary key.
 */
export function parseShapeColumns(tracked: TrackedTable, text: string | undefined): ShapeColumns {
  const all = allColumns(tracked);
  if (text === undefined) return all;
  const asked = new Set(parseColumnNames(text));
  const unknown = [...asked].filter((name) => !all.names.includes(name));
  if (unknown.length > 0) throw invalid(`not found on the table: ${unknown.join(', ')}`);
  const missing = tableColumns(tracked).filter((column) => column.primary && !asked.has(column.name));
  if (missing.length > 0) {
    throw invalid(`must include the primary key column: ${missing.map((column) => column.name).join(', ')}`);
  }
  const names = all.names.filter((name) => asked.has(name));
  if (names.length === all.names.length) return all;
  const key = names.join(',');
  const digest = createHash('sha256').update(JSON.stringify(names)).digest('base64url').slice(0, 12);
  return { names, digest, key };
}

/** The `columns` parameter naming exactly this set, as the official client writes it. */
export function columnsParam(columns: ShapeColumns): string {
  return columns.names.map((name) => `"${name.replaceAll('"', '""')}"`).join(',');
}

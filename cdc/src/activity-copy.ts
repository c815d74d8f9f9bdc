/**
 * Activities as rows of COPY's binary format, encoded as soon as they are mapped, into one
 * growing Buffer:
 *
 *   change ─► activityFromChange ─► encodeRow ─► slab  [ part 1 | part 2 | part 3 ··· free ]
 *                                                        └ take() ┘ (a view, no copy)
 *
 *   COPY stream  COPY_HEADER · rows · COPY_TRAILER
 *   header       "PGCOPY\n\377\r\n\0" · flags i32 (0) · extension length i32 (0)
 *   row          field count i16 · per field in COPY_COLUMNS order: length i32 (-1: NULL) · bytes
 *   field bytes  int8/int4 big-endian · text UTF-8 · jsonb: version 1 · JSON text ·
 *                text[]: ndim i32 (1; 0 when empty) · has nulls i32 (0) · element type oid i32 (text) ·
 *                length i32 · lower bound i32 (1) · elements as (length i32 · UTF-8) ·
 *                timestamptz: i64 microseconds since 2000-01-01 UTC
 *   trailer      -1 as i16
 *
 * The binary format spares PostgreSQL the text parse of the integers, the timestamp and the
 * array (COPY of the same rows: 0.90x the backend CPU of the text format), and the worker the
 * text format's escaping. A buffered activity is its bytes outside the JS heap, not a graph of
 * objects the garbage collector copies while the batch waits for its turn. Parts cut from one
 * slab are adjacent, so a batch writes few, large chunks (`contiguousRuns`).
 */
import type { MappedActivity } from './activity.ts';

/** The columns of `activities` in the order of `encodeRow`'s fields. */
export const COPY_COLUMNS = [
  'lsn',
  'position',
  'type',
  'action',
  'entity_type',
  'entity_id',
  'organization_id',
  'user_id',
  'transaction_id',
  'client_id',
  'changed_keys',
  'row',
  'previous_values',
  'undoes_transaction_id',
  'xid',
  'created_at',
] as const;

/** What COPY … (FORMAT binary) reads before the first row. */
export const COPY_HEADER = Buffer.concat([
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
  Buffer.alloc(8), // flags, header extension length
]);

/** What it reads after the last row. */
export const COPY_TRAILER = Buffer.from([0xff, 0xff]);

/** A fresh slab holds about 1,500 activities of a few hundred bytes. */
const SLAB_BYTES = 1 << 20;
/** UTF-8 needs at most 3 bytes per UTF-16 code unit. */
const MAX_BYTES_PER_CODE_UNIT = 3;
/** Field count, 16 field lengths, the fixed-size values, the array's header and the jsonb versions. */
const FIXED_ROW_BYTES = 2 + COPY_COLUMNS.length * 4 + 8 + 4 + 8 + 8 + 20 + 2;
const TEXT_OID = 25;
const JSONB_VERSION = 1;
/** (POSTGRES_EPOCH_JDATE − UNIX_EPOCH_JDATE) × USECS_PER_DAY */
const MICROS_1970_TO_2000 = 946_684_800_000_000n;

export class CopyRowBuffer {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Rows from `start` to `end` are appended and not yet taken. */
  private start = 0;
  private end = 0;

  append(activity: MappedActivity): void {
    const worstCase = worstCaseBytes(activity);
    if (this.slab.length - this.end < worstCase) this.moveToNewSlab(worstCase);
    this.end = encodeRow(this.slab, this.end, activity);
  }

  /** The rows appended since the last take (a view of the slab). */
  take(): Buffer {
    const rows = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    return rows;
  }

  /** Forget the rows not taken (their transaction is sent again). */
  discard(): void {
    this.end = this.start;
  }

  /** The rows not taken move along; a part larger than a slab doubles it (no copy per row). */
  private moveToNewSlab(room: number): void {
    const pending = this.slab.subarray(this.start, this.end);
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (pending.length + room)));
    pending.copy(slab);
    this.slab = slab;
    this.start = 0;
    this.end = pending.length;
  }
}

/**
 * Adjacent views of one slab joined into one, so COPY gets few large chunks (one view made per
 * run, not per part: a catch-up's batch is thousands of one-row parts).
 */
export function contiguousRuns(chunks: readonly Buffer[]): Buffer[] {
  const runs: Buffer[] = [];
  let first: Buffer | null = null;
  let end = 0;
  const close = () => {
    if (first) runs.push(Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset));
  };
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (first && first.buffer === chunk.buffer && end === chunk.byteOffset) {
      end += chunk.length;
    } else {
      close();
      first = chunk;
      end = chunk.byteOffset + chunk.length;
    }
  }
  close();
  return runs;
}

function worstCaseBytes(a: MappedActivity): number {
  let units =
    a.type.length +
    a.action.length +
    a.entityType.length +
    a.entityId.length +
    a.organizationId.length +
    (a.userId?.length ?? 0) +
    (a.transactionId?.length ?? 0) +
    (a.clientId?.length ?? 0) +
    a.rowJson.length +
    (a.previousValuesJson?.length ?? 0) +
    (a.undoesTransactionId?.length ?? 0);
  for (const key of a.changedKeys) units += key.length;
  return FIXED_ROW_BYTES + 4 * a.changedKeys.length + units * MAX_BYTES_PER_CODE_UNIT;
}

/** One activity as a binary COPY row at `offset`, fields in `COPY_COLUMNS` order; returns its end. */
export function encodeRow(buffer: Buffer, offset: number, a: MappedActivity): number {
  let at = buffer.writeInt16BE(COPY_COLUMNS.length, offset);
  at = buffer.writeInt32BE(8, at);
  at = buffer.writeBigInt64BE(a.lsn, at);
  at = buffer.writeInt32BE(4, at);
  at = buffer.writeInt32BE(a.position, at);
  at = textField(buffer, at, a.type);
  at = textField(buffer, at, a.action);
  at = textField(buffer, at, a.entityType);
  at = textField(buffer, at, a.entityId);
  at = textField(buffer, at, a.organizationId);
  at = textField(buffer, at, a.userId);
  at = textField(buffer, at, a.transactionId);
  at = textField(buffer, at, a.clientId);
  at = textArrayField(buffer, at, a.changedKeys);
  at = jsonbField(buffer, at, a.rowJson);
  at = jsonbField(buffer, at, a.previousValuesJson);
  at = textField(buffer, at, a.undoesTransactionId);
  at = buffer.writeInt32BE(8, at);
  at = buffer.writeUInt32BE(0, at); // a 32-bit xid in an int8
  at = buffer.writeUInt32BE(a.xid, at);
  at = buffer.writeInt32BE(8, at);
  return buffer.writeBigInt64BE(a.commitTime - MICROS_1970_TO_2000, at);
}

/** Length, then the UTF-8 bytes (NULL: length -1). */
function textField(buffer: Buffer, offset: number, value: string | null): number {
  if (value === null) return buffer.writeInt32BE(-1, offset);
  const length = writeUtf8(buffer, offset + 4, value);
  buffer.writeInt32BE(length, offset);
  return offset + 4 + length;
}

function jsonbField(buffer: Buffer, offset: number, json: string | null): number {
  if (json === null) return buffer.writeInt32BE(-1, offset);
  buffer[offset + 4] = JSONB_VERSION;
  const length = 1 + writeUtf8(buffer, offset + 5, json);
  buffer.writeInt32BE(length, offset);
  return offset + 4 + length;
}

function textArrayField(buffer: Buffer, offset: number, values: readonly string[]): number {
  let at = offset + 4;
  at = buffer.writeInt32BE(values.length === 0 ? 0 : 1, at);
  at = buffer.writeInt32BE(0, at);
  at = buffer.writeInt32BE(TEXT_OID, at);
  if (values.length > 0) {
    at = buffer.writeInt32BE(values.length, at);
    at = buffer.writeInt32BE(1, at);
    for (const value of values) at = textField(buffer, at, value);
  }
  buffer.writeInt32BE(at - offset - 4, offset);
  return at;
}

/**
 * The UTF-8 bytes of `text` at `offset`; returns their length. Short ASCII text (ids, types,
 * column names) is copied code unit by code unit, which costs less than a call into Buffer.write.
 */
function writeUtf8(buffer: Buffer, offset: number, text: string): number {
  const length = text.length;
  if (length <= 64) {
    let i = 0;
    for (; i < length; i++) {
      const unit = text.charCodeAt(i);
      if (unit >= 0x80) break;
      buffer[offset + i] = unit;
    }
    if (i === length) return length;
  }
  return buffer.write(text, offset);
}

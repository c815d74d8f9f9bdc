/**
 * Activities as COPY text lines, encoded as soon as they are mapped, into one growing Buffer:
 *
 *   change ─► activityFromChange ─► copyLine ─► slab  [ part 1 | part 2 | part 3 ··· free ]
 *                                                       └ take() ┘ (a view, no copy)
 *
 * A buffered activity is then its bytes outside the JS heap, not a graph of objects the garbage
 * collector copies while the batch waits for its turn. Parts cut from one slab are adjacent, so a
 * batch writes few, large chunks (`contiguousRuns`).
 */
import type { MappedActivity } from './activity.ts';

/** The columns of `activities` in the order of `copyLine`'s fields. */
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

/** A fresh slab holds about 1,500 activities of a few hundred bytes. */
const SLAB_BYTES = 1 << 20;
/** UTF-8 needs at most 3 bytes per UTF-16 code unit. */
const MAX_BYTES_PER_CODE_UNIT = 3;

export class CopyLineBuffer {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Lines from `start` to `end` are appended and not yet taken. */
  private start = 0;
  private end = 0;

  append(activity: MappedActivity): void {
    const line = copyLine(activity);
    const worstCase = line.length * MAX_BYTES_PER_CODE_UNIT;
    if (this.slab.length - this.end < worstCase) this.moveToNewSlab(worstCase);
    this.end += this.slab.write(line, this.end);
  }

  /** The lines appended since the last take (a view of the slab). */
  take(): Buffer {
    const lines = this.slab.subarray(this.start, this.end);
    this.start = this.end;
    return lines;
  }

  /** Forget the lines not taken (their transaction is sent again). */
  discard(): void {
    this.end = this.start;
  }

  /** The lines not taken move along; a part larger than a slab doubles it (no copy per line). */
  private moveToNewSlab(room: number): void {
    const pending = this.slab.subarray(this.start, this.end);
    const slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (pending.length + room)));
    pending.copy(slab);
    this.slab = slab;
    this.start = 0;
    this.end = pending.length;
  }
}

/** Adjacent views of one slab joined into one, so COPY gets few large chunks. */
export function contiguousRuns(chunks: readonly Buffer[]): Buffer[] {
  const runs: Buffer[] = [];
  for (const chunk of chunks) {
    if (chunk.length === 0) continue;
    const last = runs.at(-1);
    if (last && last.buffer === chunk.buffer && last.byteOffset + last.length === chunk.byteOffset) {
      runs[runs.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + chunk.length);
    } else {
      runs.push(chunk);
    }
  }
  return runs;
}

/** One activity in COPY's text format, fields in `COPY_COLUMNS` order. */
export function copyLine(a: MappedActivity): string {
  return `${a.lsn}\t${a.position}\t${text(a.type)}\t${a.action}\t${text(a.entityType)}\t${text(a.entityId)}\t${text(
    a.organizationId,
  )}\t${text(a.userId)}\t${text(a.transactionId)}\t${text(a.clientId)}\t${text(textArray(a.changedKeys))}\t${json(
    a.rowJson,
  )}\t${a.previousValuesJson === null ? '\\N' : json(a.previousValuesJson)}\t${text(a.undoesTransactionId)}\t${a.xid}\t${
    a.createdAt
  }\n`;
}

const ARRAY_SPECIAL = /["\\]/;
const ARRAY_SPECIAL_ALL = /["\\]/g;
const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIAL_ALL = /[\\\n\r\t]/g;
const COPY_ESCAPE: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A text value in COPY's text format: NULL is \N; backslash, newline, CR and tab are escaped. */
function text(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPE[c] as string) : value;
}

/** JSON text (as JSON.stringify and jsonb write it) holds no raw newline, CR or tab; only its backslashes need doubling. */
function json(serialised: string): string {
  return serialised.includes('\\') ? serialised.replaceAll('\\', '\\\\') : serialised;
}

/** A PostgreSQL array literal of quoted strings: {"a","b"}. */
function textArray(values: readonly string[]): string {
  let literal = '{';
  for (let i = 0; i < values.length; i++) {
    const value = values[i] as string;
    const escaped = ARRAY_SPECIAL.test(value) ? value.replace(ARRAY_SPECIAL_ALL, '\\$&') : value;
    literal += `${i === 0 ? '' : ','}"${escaped}"`;
  }
  return `${literal}}`;
}

/**
 * Persisting a batch of complete source transactions in ONE database transaction:
 *
 *   BEGIN
 *     COPY the activities into `activities`            (may run while the previous batch commits)
 *     wait until the previous batch has committed       (activities become visible in WAL order)
 *     add the count deltas of these activities to entity_counts
 *     cdc_state.last_lsn := the batch's last commit LSN, NOTIFY sync_activities
 *   COMMIT                                              → the caller acknowledges that LSN
 *
 * Exactly once (guarantee 3): batches are written in commit-LSN order and `cdc_state.last_lsn`
 * moves in the same transaction as the rows, so it is exactly the highest source commit whose
 * activities exist. After a (re)connect or a failed write the caller re-reads it with
 * `readWrittenLsn` (FOR UPDATE: it waits out a write still in flight from a dead process) and
 * drops the replayed transactions at or below it: their rows and their count deltas were
 * committed together, so nothing is written or counted twice. The primary key (lsn, position)
 * still rejects a duplicate outright, should anything else ever try.
 *
 * COPY instead of INSERT … SELECT: parsing is the costly part of a bulk insert here (about a
 * third of the time with json_to_recordset), and COPY's text format is the cheapest to parse.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type postgres from 'postgres';
import type { ActivityRow, CountDelta } from './activity.ts';
import { NOTIFY_CHANNEL } from './constants.ts';
import { activityId } from './lsn.ts';
import { encodeActivityNotification } from './notification.ts';

export interface ActivityBatch {
  activities: ActivityRow[];
  /** Count deltas of the batch's activities. */
  deltas: CountDelta[];
  /** Commit LSN of the batch's last source transaction (what the caller acknowledges). */
  lastCommitLsn: bigint;
  /** Its commit time (ISO, microseconds). */
  lastCommitTime: string;
}

const COLUMNS = [
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

/**
 * The highest source commit LSN whose activities are committed. Waits for a concurrent writer of
 * this slot's state (a batch still committing on behalf of a process that died) to finish.
 */
export async function readWrittenLsn(sql: postgres.Sql, slotName: string): Promise<bigint> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ last_lsn: string }[]>`
      select last_lsn::text from cdc_state where slot_name = ${slotName} for update`;
    if (!row) throw new Error(`no cdc_state row for slot "${slotName}"`);
    return BigInt(row.last_lsn);
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
    if (batch.activities.length > 0) {
      const copy = await tx`copy activities (${tx.unsafe(COLUMNS.join(', '))}) from stdin`.writable();
      await pipeline(Readable.from(copyChunks(batch.activities)), copy);
    }
    if (!(await previous)) throw new Error('an earlier batch was not written');
    const counts = sumDeltas(batch.deltas);
    if (counts.length > 0) {
      await tx`
        insert into entity_counts (organization_id, entity_type, count)
        select organization_id, entity_type, delta
        from json_to_recordset(${JSON.stringify(counts)}::text::json)
          as d(organization_id text, entity_type text, delta int8)
        on conflict (organization_id, entity_type) do update set count = entity_counts.count + excluded.count`;
    }
    const payload = notificationPayload(batch);
    const [state] = await tx<{ updated: number }[]>`
      with state as (
        update cdc_state
        set last_lsn = ${String(batch.lastCommitLsn)}::int8,
          last_event_at = case when ${payload}::text is null then last_event_at else ${batch.lastCommitTime}::timestamptz end,
          updated_at = now()
        where slot_name = ${slotName} and last_lsn < ${String(batch.lastCommitLsn)}::int8
        returning 1
      )
      select (select count(*) from state)::int as updated,
        case when ${payload}::text is null then null else pg_notify(${NOTIFY_CHANNEL}, ${payload}::text) end`;
    // Not moving forward means someone else wrote these transactions: never commit a duplicate.
    if (state?.updated !== 1)
      throw new Error(`cdc_state.last_lsn is already at or past this batch (${slotName})`);
  });
}

/** COPY text format, in chunks of rows so no single string gets huge. */
function* copyChunks(activities: readonly ActivityRow[]): Generator<string> {
  const rowsPerChunk = 1_000;
  for (let start = 0; start < activities.length; start += rowsPerChunk) {
    let chunk = '';
    const end = Math.min(start + rowsPerChunk, activities.length);
    for (let i = start; i < end; i++) chunk += copyLine(activities[i] as ActivityRow);
    yield chunk;
  }
}

function copyLine(a: ActivityRow): string {
  return `${a.lsn}\t${a.position}\t${text(a.type)}\t${a.action}\t${text(a.entityType)}\t${text(a.entityId)}\t${text(
    a.organizationId,
  )}\t${text(a.userId)}\t${text(a.transactionId)}\t${text(a.clientId)}\t${text(textArray(a.changedKeys))}\t${json(
    a.row,
  )}\t${a.previousValues === null ? '\\N' : json(a.previousValues)}\t${text(a.undoesTransactionId)}\t${a.xid}\t${
    a.createdAt
  }\n`;
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIAL_ALL = /[\\\n\r\t]/g;
const COPY_ESCAPE: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A text value in COPY's text format: NULL is \N; backslash, newline, CR and tab are escaped. */
function text(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPE[c] as string) : value;
}

/** JSON text never holds a raw newline, CR or tab; only its backslashes need doubling. */
function json(value: unknown): string {
  const serialised = JSON.stringify(value);
  return serialised.includes('\\') ? serialised.replaceAll('\\', '\\\\') : serialised;
}

/** A PostgreSQL array literal of quoted strings: {"a","b"}. */
function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`).join(',')}}`;
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

function notificationPayload(batch: ActivityBatch): string | null {
  const last = batch.activities.at(-1);
  if (!last) return null;
  const organizationIds = [...new Set(batch.activities.map((a) => a.organizationId))];
  return encodeActivityNotification({ id: activityId(last.lsn, last.position), organizationIds });
}

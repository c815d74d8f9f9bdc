/**
 * Retention: activities older than `activityRetentionDays` and idempotency records
 * (applied_transactions) older than `idempotencyRetentionDays` are deleted in small batches, so
 * no statement holds many locks or writes a burst of WAL. Runs shortly after start, then every
 * `intervalMs`.
 *
 * The activity log is cut as a prefix, whole source transactions at a time: everything up to
 * the LSN of the newest expired activity goes, and `activity_log.pruned_through_lsn` moves to
 * the last LSN deleted in the same statement. A feed cursor or shape offset below it may have
 * lost entries, and the API answers it with 409 (refetch).
 *
 * That LSN is found by bisecting the primary key, not through an index on created_at (which
 * every activity would pay for, for one query an hour): created_at is the source transaction's
 * commit time, which grows with its commit LSN, so the expired activities are a prefix of the
 * key order. Each probe reads the first activity at or after an LSN (one primary-key lookup):
 *
 *   expired := the first activity (old)     young := the last activity (not old)
 *   while young − expired > 1:  mid := (expired + young) / 2, row := first activity ≥ mid
 *     row ≥ young: young := mid · row old: expired := row · else young := row
 *   ──► `expired` is the newest expired LSN (at most 64 probes)
 *
 * Two transactions committing at the same moment may take their commit times and their WAL
 * places in opposite orders, so the boundary is exact to within that moment.
 */
import type { Logger } from 'pino';
import type postgres from 'postgres';
import { DEFAULTS } from './constants.ts';

export interface RetentionOptions {
  sql: postgres.Sql;
  logger: Logger;
  activityRetentionDays: number;
  idempotencyRetentionDays: number;
  intervalMs: number;
  batchSize?: number;
  /** Delay before the first run. */
  firstRunDelayMs?: number;
}

export interface RetentionResult {
  activities: number;
  appliedTransactions: number;
}

export function startRetentionJob(options: RetentionOptions): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<unknown> | null = null;
  const tick = () => {
    if (stopped || running) return;
    running = applyRetention(options, () => stopped)
      .then((result) => {
        if (result.activities + result.appliedTransactions > 0) {
          options.logger.info(result, 'retention: deleted expired rows');
        }
      })
      .catch((error) => options.logger.warn({ err: error }, 'retention run failed; will retry'))
      .finally(() => {
        running = null;
      });
  };
  const first = setTimeout(tick, options.firstRunDelayMs ?? 5_000);
  const every = setInterval(tick, options.intervalMs);
  first.unref();
  every.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(every);
      await running;
    },
  };
}

export async function applyRetention(
  options: Pick<RetentionOptions, 'sql' | 'activityRetentionDays' | 'idempotencyRetentionDays' | 'batchSize'>,
  shouldStop: () => boolean = () => false,
): Promise<RetentionResult> {
  const { sql } = options;
  const limit = options.batchSize ?? DEFAULTS.retentionBatchSize;
  const result: RetentionResult = { activities: 0, appliedTransactions: 0 };
  const cutoff = await newestExpiredLsn(sql, options.activityRetentionDays);
  while (cutoff !== null && !shouldStop()) {
    // `limit` source transactions per statement (a transaction's activities share its LSN)
    const [batch] = await sql<{ deleted: number; transactions: number }[]>`
      with doomed as (
        select distinct lsn from activities where lsn <= ${String(cutoff)}::int8 order by lsn limit ${limit}
      ), deleted as (
        delete from activities where lsn in (select lsn from doomed) returning lsn
      ), watermark as (
        update activity_log set pruned_through_lsn = greatest(pruned_through_lsn, (select max(lsn) from deleted))
        where exists (select 1 from deleted)
        returning 1
      )
      select (select count(*) from deleted)::int as deleted, (select count(*) from doomed)::int as transactions,
        (select count(*) from watermark)::int as watermark`;
    result.activities += batch?.deleted ?? 0;
    if ((batch?.transactions ?? 0) < limit) break;
  }
  while (!shouldStop()) {
    const deleted = await sql`
      delete from applied_transactions where transaction_id in (
        select transaction_id from applied_transactions
        where applied_at < now() - ${options.idempotencyRetentionDays}::float8 * interval '1 day'
        limit ${limit})`;
    result.appliedTransactions += deleted.count;
    if (deleted.count < limit) break;
  }
  return result;
}

/** The commit LSN of the newest activity older than `days` (null: none), bisecting the primary key. */
async function newestExpiredLsn(sql: postgres.Sql, days: number): Promise<bigint | null> {
  const [window] = await sql<{ cutoff: string }[]>`
    select (now() - ${days}::float8 * interval '1 day')::text as cutoff`;
  const cutoff = window?.cutoff ?? '';
  /** The first activity, the last, or the first at or after an LSN. */
  const probe = async (at: 'first' | 'last' | bigint) => {
    // ordered by the column, not by the text alias of the same name
    const [row] = await sql<{ lsn: string; expired: boolean }[]>`
      select lsn::text, created_at < ${cutoff}::timestamptz as expired from activities
      ${typeof at === 'bigint' ? sql`where lsn >= ${String(at)}::int8` : sql``}
      order by activities.lsn ${at === 'last' ? sql`desc` : sql`asc`} limit 1`;
    return row ? { lsn: BigInt(row.lsn), expired: row.expired } : null;
  };
  const first = await probe('first');
  if (!first?.expired) return null;
  const last = await probe('last');
  if (!last || last.expired) return last?.lsn ?? first.lsn;
  let expired = first.lsn;
  let young = last.lsn;
  while (young - expired > 1n) {
    const mid = expired + (young - expired) / 2n;
    const row = await probe(mid);
    if (!row || row.lsn >= young) young = mid;
    else if (row.expired) expired = row.lsn;
    else young = row.lsn;
  }
  return expired;
}

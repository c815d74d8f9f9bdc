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
  const [cutoff] = await sql<{ lsn: string }[]>`
    select lsn::text from activities
    where created_at < now() - ${options.activityRetentionDays}::float8 * interval '1 day'
    order by activities.created_at desc, activities.lsn desc limit 1`;
  while (cutoff && !shouldStop()) {
    // `limit` source transactions per statement (a transaction's activities share its LSN)
    const [batch] = await sql<{ deleted: number; transactions: number }[]>`
      with doomed as (
        select distinct lsn from activities where lsn <= ${cutoff.lsn}::int8 order by lsn limit ${limit}
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

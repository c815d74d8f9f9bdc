/**
 * WAL positions for the tests that hold a batch between its asynchronous commit and its flush:
 * with its WAL writer asleep, PostgreSQL flushes only when something commits synchronously.
 */
import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import type { Sql } from 'postgres';

/** Puts the WAL writer to sleep for 10 s, so asynchronous commits stay unflushed that long. */
export async function holdWalFlushes(sql: Sql): Promise<void> {
  await sql`alter system set wal_writer_delay = '10s'`;
  await sql`select pg_reload_conf()`;
}

/** Where the next WAL record will go: at or after the end of everything committed so far. */
export async function walInsertPosition(sql: Sql): Promise<bigint> {
  const [wal] = await sql<{ lsn: string }[]>`select pg_current_wal_insert_lsn() - '0/0' as lsn`;
  return BigInt(wal?.lsn ?? 0);
}

/** How far the WAL is flushed, and what the worker's slot was told is done. */
export async function walFlushAndSlot(sql: Sql): Promise<{ flushed: bigint; confirmed: bigint }> {
  const [state] = await sql<{ flushed: string; confirmed: string }[]>`
    select pg_current_wal_flush_lsn() - '0/0' as flushed, confirmed_flush_lsn - '0/0' as confirmed
    from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
  return { flushed: BigInt(state?.flushed ?? 0), confirmed: BigInt(state?.confirmed ?? 0) };
}

import { fileURLToPath } from 'node:url';
import { DEFAULT_SLOT_NAME, MIGRATION_LOCK_KEY } from '@sync/cdc/constants';
import { prepareReplicationAt } from '@sync/cdc/replication-setup';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import pino, { type Logger } from 'pino';
import postgres from 'postgres';
import * as schema from './schema.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../drizzle', import.meta.url));

export type Sql = postgres.Sql;
/** A client or an open transaction: anything that runs a query. */
export type Queryable = postgres.Sql | postgres.TransactionSql;
export type Db = ReturnType<typeof createDb>['db'];

/**
 * Two pools: drizzle replaces postgres.js's date parsers and serializers on the client it is
 * given, so raw queries get a client of their own that behaves as postgres.js documents.
 */
export function createDb(url: string, options: { max?: number } = {}) {
  const connect = () =>
    postgres(url, {
      max: options.max ?? 10,
      onnotice: () => {},
      connection: { application_name: 'sync-api' },
    });
  const sql = connect();
  const drizzleClient = connect();
  return {
    sql,
    db: drizzle(drizzleClient, { schema }),
    end: async () => {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}

/**
 * Apply the committed migrations in `drizzle/`, then make sure the CDC worker's publication and
 * replication slot exist: from then on PostgreSQL keeps every tracked change's WAL for the
 * worker, however much later it starts (guarantee 3 from the first write). The API and the CDC
 * worker may start at the same moment, so this runs under an advisory lock.
 */
export async function runMigrations(
  url: string,
  options: { slotName?: string; logger?: Logger } = {},
): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS_FOLDER });
    await prepareReplicationAt(
      url,
      options.slotName ?? DEFAULT_SLOT_NAME,
      options.logger ?? pino({ level: 'warn' }),
    );
  } finally {
    await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {});
    await sql.end();
  }
}

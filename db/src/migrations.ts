import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import pino, { type Logger } from 'pino';
import postgres from 'postgres';
import { DEFAULT_SLOT_NAME, MIGRATION_LOCK_KEY } from './constants.ts';
import { prepareReplicationAt } from './replication-setup.ts';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

/**
 * Apply the committed migrations in `db/drizzle/`, then make sure the CDC worker's publication
 * and replication slot exist: from then on PostgreSQL keeps every tracked change's WAL for the
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

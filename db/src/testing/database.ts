import { type EmbeddedCluster, startEmbeddedPostgres } from '../embedded-postgres.ts';
import { runMigrations } from '../migrations.ts';

/**
 * A throwaway, migrated PostgreSQL with `wal_level=logical` for one test file; `fast: false`
 * keeps PostgreSQL's durable settings (for benchmarks of the whole stack).
 */
export async function startTestDatabase(options: { fast?: boolean } = {}): Promise<EmbeddedCluster> {
  const cluster = await startEmbeddedPostgres({ fast: options.fast ?? true, maxSlotWalKeepSize: '256MB' });
  await runMigrations(cluster.url);
  return cluster;
}

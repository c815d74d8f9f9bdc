import { type EmbeddedCluster, startEmbeddedPostgres } from '../embedded-postgres.ts';
import { runMigrations } from '../migrations.ts';

/** A throwaway, migrated PostgreSQL with `wal_level=logical` for one test file. */
export async function startTestDatabase(): Promise<EmbeddedCluster> {
  const cluster = await startEmbeddedPostgres({ fast: true, maxSlotWalKeepSize: '256MB' });
  await runMigrations(cluster.url);
  return cluster;
}

/**
 * The API alone, for deployments (`npm run start -w backend`): DATABASE_URL is required and
 * migrations are applied before the port opens. No demo account; HOST (127.0.0.1 by default)
 * says which interface to listen on.
 */
import { createLogger } from '@sync/db/logger';
import { runMigrations } from '@sync/db/migrations';
import { startApiServer } from './server.ts';

const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'info' });
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  logger.fatal('DATABASE_URL is required (a PostgreSQL with wal_level=logical)');
  process.exit(1);
}
const api = await runMigrations(databaseUrl)
  .then(() =>
    startApiServer({
      databaseUrl,
      port: Number(process.env.PORT ?? 3000),
      hostname: process.env.HOST || '127.0.0.1',
      logger,
    }),
  )
  .catch((err: unknown) => {
    logger.fatal({ err }, 'the API could not start');
    process.exit(1);
  });
logger.info({ url: api.url }, 'API listening');
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    logger.info({ signal }, 'shutting down');
    await api.close();
    process.exit(0);
  });
}

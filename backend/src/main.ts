/**
 * The API alone, for deployments (`npm run start -w backend`): DATABASE_URL is required and
 * migrations are applied before the port opens. No demo account; HOST (127.0.0.1 by default)
 * says which interface to listen on.
 */

import { EnvironmentError, parseEnvironment } from '@sync/db/environment';
import { createLogger } from '@sync/db/logger';
import { runMigrations } from '@sync/db/migrations';
import { ApiEnvironment, apiSettings } from './config.ts';
import { startApiServer } from './server.ts';

const env = readEnvironment();
const logger = createLogger({ level: env.LOG_LEVEL, json: env.NODE_ENV === 'production' });
const config = apiSettings(env);
const api = await runMigrations(env.DATABASE_URL, { slotName: env.CDC_SLOT_NAME })
  .then(() =>
    startApiServer({ databaseUrl: env.DATABASE_URL, port: env.PORT, hostname: env.HOST, logger, config }),
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

/** A bad variable ends the API before it starts: one line naming it, exit code 1. */
function readEnvironment() {
  try {
    return parseEnvironment(ApiEnvironment, process.env);
  } catch (err) {
    if (!(err instanceof EnvironmentError)) throw err;
    console.error(`The API cannot start: ${err.message}`);
    process.exit(1);
  }
}

/**
 * Standalone entry: `npm run start -w cdc` (or `node --import tsx cdc/src/main.ts`).
 *   DATABASE_URL   required; the PostgreSQL to follow (wal_level=logical)
 *   CDC_SLOT_NAME  optional; replication slot (default sync_activities)
 *   LOG_LEVEL      optional; pino level (default info)
 *   NODE_ENV       optional; `production`: JSON log lines
 *   ACTIVITY_RETENTION_DAYS / IDEMPOTENCY_RETENTION_DAYS  optional; retention (30 / 7 days)
 * read once (config.ts): a missing or bad one ends the worker with one line naming it, exit code 2.
 * Migrates and ensures the publication and slot (idempotent, under an advisory lock shared with
 * the API; retried until the database answers), starts the worker, and on SIGINT/SIGTERM flushes, acknowledges and closes.
 */

import { EnvironmentError, parseEnvironment } from '@sync/db/environment';
import { createLogger } from '@sync/db/logger';
import { runMigrations } from '@sync/db/migrations';
import { sleep } from '@sync/db/timers';
import { CdcEnvironment } from './config.ts';
import { DEFAULTS } from './constants.ts';
import { type CdcWorker, startCdcWorker } from './worker.ts';

const env = readEnvironment();
const logger = createLogger({ name: 'cdc', level: env.LOG_LEVEL, json: env.NODE_ENV === 'production' });
const { DATABASE_URL: databaseUrl, CDC_SLOT_NAME: slotName } = env;

let stopping = false;
let worker: CdcWorker | undefined;
const stop = (reason: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ reason }, 'stopping');
  (worker?.stop() ?? Promise.resolve()).then(
    () => process.exit(0),
    (error) => {
      logger.error({ err: error }, 'stop failed');
      process.exit(1);
    },
  );
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop(signal));
// started by `npm start` with an IPC channel: when that process dies, the channel closes
if (process.send) process.on('disconnect', () => stop('the process that started the worker exited'));

let backoffMs: number = DEFAULTS.reconnectInitialMs;
while (!stopping) {
  try {
    await runMigrations(databaseUrl, { slotName, logger });
    break;
  } catch (error) {
    logger.warn({ err: error, retryInMs: backoffMs }, 'database not ready for migrations; retrying');
    await sleep(backoffMs);
    backoffMs = Math.min(backoffMs * 2, DEFAULTS.reconnectMaxMs);
  }
}
if (!stopping) {
  worker = startCdcWorker({
    databaseUrl,
    slotName,
    logger,
    activityRetentionDays: env.ACTIVITY_RETENTION_DAYS,
    idempotencyRetentionDays: env.IDEMPOTENCY_RETENTION_DAYS,
  });
}

/** A bad variable ends the worker before it starts: one line naming it, exit code 2. */
function readEnvironment(): CdcEnvironment {
  try {
    return parseEnvironment(CdcEnvironment, process.env);
  } catch (err) {
    if (!(err instanceof EnvironmentError)) throw err;
    console.error(`The CDC worker cannot start: ${err.message}`);
    process.exit(2);
  }
}

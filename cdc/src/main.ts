/**
 * Standalone entry: `npm run start -w cdc` (or `node --import tsx cdc/src/main.ts`).
 *   DATABASE_URL   required; the PostgreSQL to follow (wal_level=logical)
 *   CDC_SLOT_NAME  optional; replication slot (default sync_activities)
 *   LOG_LEVEL      optional; pino level (default info)
 *   ACTIVITY_RETENTION_DAYS / IDEMPOTENCY_RETENTION_DAYS  optional; retention (30 / 7 days)
 * Migrates and ensures the publication and slot (idempotent, under an advisory lock shared with
 * the API; retried until the database answers), starts the worker, and on SIGINT/SIGTERM flushes, acknowledges and closes.
 */

import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import { createLogger } from '@sync/db/logger';
import { runMigrations } from '@sync/db/migrations';
import { assertSlotName } from '@sync/db/replication-setup';
import { sleep } from '@sync/db/timers';
import { DEFAULTS } from './constants.ts';
import { type CdcWorker, startCdcWorker } from './worker.ts';

const logger = createLogger({ name: 'cdc', level: process.env.LOG_LEVEL ?? 'info' });
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  logger.fatal(
    'DATABASE_URL is required to run the CDC worker on its own (e.g. postgres://user:pass@host:5432/app on a server with wal_level=logical). `npm start` at the repository root runs it against the embedded PostgreSQL instead.',
  );
  process.exit(2);
}
const slotName = process.env.CDC_SLOT_NAME || DEFAULT_SLOT_NAME;
assertSlotName(slotName);

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
if (!stopping) worker = startCdcWorker({ databaseUrl, slotName, logger });

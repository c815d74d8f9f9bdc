/**
 * The worker's variables, parsed once by its entry point (main.ts). `startCdcWorker` itself
 * takes plain options, so tests and benchmarks set those instead.
 */
import { logLevel, optionalText, required, slotName, unsetWhenEmpty } from '@sync/db/environment';
import { z } from 'zod';
import { DEFAULTS } from './constants.ts';

const days = (fallback: number) =>
  unsetWhenEmpty(
    z.coerce
      .number({ error: 'expected a number of days' })
      .positive('expected a positive number of days')
      .default(fallback),
  );

export const CdcEnvironment = z.object({
  DATABASE_URL: required(
    'the PostgreSQL to follow (e.g. postgres://user:pass@host:5432/app on a server with wal_level=logical); `npm start` at the repository root runs the worker against the embedded PostgreSQL instead',
  ),
  CDC_SLOT_NAME: slotName,
  LOG_LEVEL: logLevel('info'),
  /** `production`: JSON log lines and secure cookies; anything else: readable lines. */
  NODE_ENV: optionalText,
  ACTIVITY_RETENTION_DAYS: days(DEFAULTS.activityRetentionDays),
  IDEMPOTENCY_RETENTION_DAYS: days(DEFAULTS.idempotencyRetentionDays),
});

export type CdcEnvironment = z.output<typeof CdcEnvironment>;

/**
 * The API's OpenAPI document, built from the backend's routes in process: no database is
 * contacted (postgres.js connects lazily and the document route reads nothing).
 */
import { createApp } from '@sync/backend/app';
import { createActivityNotifier } from '@sync/backend/core/activity-notifier';
import { createMetrics } from '@sync/backend/core/metrics';
import { createDb } from '@sync/backend/db/client';
import pino from 'pino';

export async function openApiDocument(): Promise<unknown> {
  const logger = pino({ level: 'silent' });
  const { db, sql, end } = createDb('postgres://unused@127.0.0.1:1/unused');
  const app = createApp({
    db,
    sql,
    logger,
    metrics: createMetrics(),
    notifier: createActivityNotifier(sql, logger),
    config: {
      production: false,
      sessionDays: 30,
      maxStreamsPerUser: 20,
      shapeLongPollMs: 20_000,
      cdcSlotName: 'unused',
      corsOrigins: [],
    },
  });
  try {
    const response = await app.request('/api/openapi.json');
    if (!response.ok) throw new Error(`GET /api/openapi.json answered ${response.status}`);
    return await response.json();
  } finally {
    await end();
  }
}

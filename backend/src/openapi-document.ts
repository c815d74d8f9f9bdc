/**
 * The API's OpenAPI document, built from the backend's routes in process: no database is
 * contacted (postgres.js connects lazily and the document route reads nothing).
 */

import pino from 'pino';
import { createApp } from './app.ts';
import { createActivityNotifier } from './core/activity-notifier.ts';
import { createLiveAccessRegistry } from './core/live-access.ts';
import { createMetrics } from './core/metrics.ts';
import { createDb } from './db/client.ts';
import { defaultAppConfig } from './server.ts';

export async function openApiDocument(): Promise<unknown> {
  const logger = pino({ level: 'silent' });
  const { db, sql, end } = createDb('postgres://unused@127.0.0.1:1/unused');
  const config = defaultAppConfig;
  const app = createApp({
    db,
    sql,
    logger,
    metrics: createMetrics(),
    notifier: createActivityNotifier(sql, logger),
    liveAccess: createLiveAccessRegistry(sql, logger, config.liveAccessCheckMs),
    config,
  });
  try {
    const response = await app.request('/api/openapi.json');
    if (!response.ok) throw new Error(`GET /api/openapi.json answered ${response.status}`);
    return await response.json();
  } finally {
    await end();
  }
}

/** Starts the API on a port: used by `npm start`, the standalone entry, tests and benchmarks. */
import { type ServerType, serve } from '@hono/node-server';
import { DEFAULT_SLOT_NAME } from '@sync/cdc/constants';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import { createActivityNotifier } from './core/activity-notifier.ts';
import type { AppConfig } from './core/app-env.ts';
import { createMetrics } from './core/metrics.ts';
import { createDb } from './db/client.ts';

export interface ApiServer {
  url: string;
  port: number;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

export async function startApiServer(options: {
  databaseUrl: string;
  port?: number;
  hostname?: string;
  logger?: Logger;
  config?: Partial<AppConfig>;
  /** Extra routes mounted after the API (the web app's static files). */
  extend?: (app: ReturnType<typeof createApp>) => void;
}): Promise<ApiServer> {
  const logger = options.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const { db, sql, end } = createDb(options.databaseUrl);
  const config: AppConfig = {
    production: process.env.NODE_ENV === 'production',
    sessionDays: 30,
    maxStreamsPerUser: 20,
    shapeLongPollMs: 20_000,
    shapeSnapshotChunkRows: 10_000,
    cdcSlotName: process.env.CDC_SLOT_NAME || DEFAULT_SLOT_NAME,
    electricUrl: process.env.ELECTRIC_URL || undefined,
    electricSecret: process.env.ELECTRIC_SECRET || undefined,
    corsOrigins: (process.env.CORS_ORIGINS ?? 'http://localhost:5173').split(',').filter(Boolean),
    ...options.config,
  };
  const notifier = createActivityNotifier(sql, logger);
  const app = createApp({ db, sql, logger, metrics: createMetrics(), notifier, config });
  options.extend?.(app);
  const hostname = options.hostname ?? '127.0.0.1';
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  return {
    url: `http://${hostname === '0.0.0.0' ? '127.0.0.1' : hostname}:${port}`,
    port,
    app,
    async close() {
      await notifier.close();
      // open streams would keep the server from closing
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await end();
    },
  };
}

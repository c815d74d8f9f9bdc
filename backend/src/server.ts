/** Starts the API on a port: used by `npm start`, the standalone entry, tests and benchmarks. */
import { type ServerType, serve } from '@hono/node-server';
import { CDC_LAGGING_BYTES } from '@sync/db/cdc-status';
import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import { createActivityNotifier } from './core/activity-notifier.ts';
import type { AppConfig } from './core/app-env.ts';
import { createLiveAccessRegistry } from './core/live-access.ts';
import { createMetrics } from './core/metrics.ts';
import { createDb } from './db/client.ts';
import { mountWebApp } from './web-app.ts';

export interface ApiServer {
  url: string;
  port: number;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

/** The API's settings when nothing overrides them (its entry points pass what the environment says: config.ts). */
export const defaultAppConfig: AppConfig = {
  production: false,
  sessionDays: 30,
  maxStreamsPerUser: 20,
  liveAccessCheckMs: 2_000,
  shapeLongPollMs: 20_000,
  undoRecordWaitMs: 5_000,
  shapeSnapshotChunkRows: 10_000,
  cdcSlotName: DEFAULT_SLOT_NAME,
  cdcLaggingBytes: CDC_LAGGING_BYTES,
  corsOrigins: ['http://localhost:5173'],
  signInLimits: {
    perAccount: { failures: 10, windowMs: 60_000 },
    perAddress: { failures: 50, windowMs: 5 * 60_000 },
  },
  trustProxy: false,
};

export async function startApiServer(options: {
  databaseUrl: string;
  port?: number;
  hostname?: string;
  logger?: Logger;
  config?: Partial<AppConfig>;
  /** Extra routes mounted after the API (benchmarks' baselines). */
  extend?: (app: ReturnType<typeof createApp>) => void;
  /** Serve the web app from this directory on the same port (see web-app.ts). */
  webRoot?: string;
}): Promise<ApiServer> {
  const logger = options.logger ?? pino({ level: 'info' });
  const { db, sql, end } = createDb(options.databaseUrl);
  const config: AppConfig = { ...defaultAppConfig, ...options.config };
  const notifier = createActivityNotifier(sql, logger);
  const liveAccess = createLiveAccessRegistry(sql, logger, config.liveAccessCheckMs);
  const app = createApp({ db, sql, logger, metrics: createMetrics(), notifier, liveAccess, config });
  options.extend?.(app);
  if (options.webRoot) mountWebApp(app, options.webRoot);
  const hostname = options.hostname ?? '127.0.0.1';
  const server: ServerType = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname }, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${options.port} on ${hostname} is in use`) : err),
    );
  }).catch(async (err) => {
    liveAccess.close();
    await notifier.close();
    await end();
    throw err;
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? 0);
  return {
    url: `http://${hostname === '0.0.0.0' ? '127.0.0.1' : hostname}:${port}`,
    port,
    app,
    async close() {
      await notifier.close();
      liveAccess.close();
      // open streams would keep the server from closing
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await end();
    },
  };
}

/**
 * `npm start`: everything on one machine with no setup.
 *
 *   embedded PostgreSQL (DATA_DIR, default .data) ─► migrations ─► API + web app on PORT (3000)
 *                                                                 └► CDC worker (child process,
 *                                                                    restarted if it dies)
 *   then a demo login is printed. DATABASE_URL skips the embedded server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import pino from 'pino';
import { ApiClient } from '../backend/src/api-client.ts';
import { runMigrations } from '../backend/src/db/client.ts';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../backend/src/db/embedded-postgres.ts';
import { startApiServer } from '../backend/src/server.ts';
import { ensureWebAppBuilt, WEB_APP_DIST } from './web-app-build.ts';

const WEB_ROOT = relative(process.cwd(), WEB_APP_DIST);
const DEMO = { email: 'demo@example.com', password: 'demo-password', organization: 'demo' };
const port = Number(process.env.PORT ?? 3000);
const dataDir = resolve(process.env.DATA_DIR ?? '.data');
const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' });

const step = (message: string) => console.log(`▸ ${message}`);
const started = Date.now();

let cluster: EmbeddedCluster | undefined;
let databaseUrl = process.env.DATABASE_URL;
if (databaseUrl) {
  step('using the PostgreSQL at DATABASE_URL (it must have wal_level=logical)');
} else {
  step(`starting embedded PostgreSQL 17 (data in ${dataDir})`);
  cluster = await startEmbeddedPostgres({
    dataDir,
    onLog: (chunk) => {
      for (const line of chunk.split('\n')) {
        if (/PANIC|FATAL|could not/.test(line) && !/administrator command/.test(line))
          console.error(`  postgres: ${line}`);
      }
    },
  });
  databaseUrl = cluster.url;
}

step('applying migrations');
await runMigrations(databaseUrl);

const cdc = superviseCdcWorker(databaseUrl);
if (await ensureWebAppBuilt()) step('built the web app (frontend/dist)');

step(`starting the API on port ${port}`);
const api = await startApiServer({
  databaseUrl,
  port,
  hostname: process.env.HOST ?? '0.0.0.0',
  logger,
  // the web app on the same port: static files, every other path to its index.html
  extend: (app) => {
    const file = serveStatic({ root: WEB_ROOT });
    const index = serveStatic({ path: `${WEB_ROOT}/index.html` });
    app.get('*', async (c, next) => {
      if (c.req.path.startsWith('/api/')) return next();
      return (await file(c, async () => {})) ?? index(c, next);
    });
  },
});

await ensureDemoAccount(new ApiClient(api.url));
const url = `http://localhost:${port}`;
console.log(`
Ready in ${((Date.now() - started) / 1000).toFixed(1)} s
  Web app    ${url}/
  API docs   ${url}/api/docs
  Health     ${url}/api/health
  Demo login ${DEMO.email} / ${DEMO.password} (organization "${DEMO.organization}")
Press Ctrl-C to stop.`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    step('stopping');
    await api.close().catch(() => {});
    await cdc.stop();
    await cluster?.stop().catch(() => {});
    process.exit(0);
  });
}

/** Created through the public API once; later starts find it in place. */
async function ensureDemoAccount(client: ApiClient): Promise<void> {
  const signUp = await client.request('POST', '/api/auth/sign-up', {
    body: { email: DEMO.email, password: DEMO.password, name: 'Demo' },
  });
  const session =
    signUp.status === 201
      ? signUp
      : await client.request('POST', '/api/auth/sign-in', {
          body: { email: DEMO.email, password: DEMO.password },
        });
  if (session.status !== 200 && session.status !== 201) {
    console.warn(`  could not sign in as the demo user (${session.status}); was its password changed?`);
    return;
  }
  await client.request('POST', '/api/organizations', {
    token: session.body.token,
    body: { name: 'Demo', slug: DEMO.organization },
  });
}

/** Runs the CDC worker as its own process and restarts it (with backoff) when it dies. */
function superviseCdcWorker(url: string) {
  const entry = resolve('cdc/src/main.ts');
  if (!existsSync(entry)) return { stop: async () => {} };
  step('starting the CDC worker');
  let child: ChildProcess | undefined;
  let restarts = 0;
  let stopped = false;
  const launch = () => {
    const startedAt = Date.now();
    child = spawn(process.execPath, ['--import', 'tsx', entry], {
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: process.env.CDC_LOG_LEVEL ?? 'warn' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code, signal) => {
      if (stopped) return;
      restarts = Date.now() - startedAt > 30_000 ? 0 : restarts + 1;
      const delay = Math.min(30_000, 250 * 2 ** restarts);
      console.error(`  CDC worker exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      setTimeout(launch, delay).unref();
    });
  };
  launch();
  return {
    async stop() {
      stopped = true;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

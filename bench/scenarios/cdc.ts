/**
 * Scenario `cdc`: the CDC worker against PostgreSQL's own decoding and the same library with no
 * sink, in one run, each reading the same WAL from its own slot created at the same point.
 *
 *   (p) ceiling    pg_recvlogical (PostgreSQL 15's, when /usr/lib/postgresql/15/bin has it)
 *                  with pgoutput into /dev/null: the walsender's decoding, nothing parsed
 *   (a) baseline   pg-logical-replication + PgoutputPlugin, manual acknowledge per commit, no
 *                  sink, decoding the WAL of N single-row transactions; (a') the same with the
 *                  worker's own connection and decoder (replication-connection.ts) in place of
 *                  the library's; (a'') both parsers alone on the same payloads in memory (no
 *                  connection), in alternating rounds
 *   (m) mapping    the same payloads through the worker's decoder and its mapping, no sink
 *                  (transaction-assembler.ts: activities mapped, COPY rows encoded, batches cut)
 *   (b) catch-up   the worker (in-process) turning the same WAL into activity rows
 *   (c) live       steady ~1,000 single-row inserts/s (direct SQL, one transaction each);
 *                  latency = arrival of the worker's NOTIFY − the change's WAL commit time
 *   (d) memory     the worker as a child process (`node --import tsx cdc/src/main.ts`): RSS
 *                  when streaming starts and at the end of the live run
 *
 * PostgreSQL is embedded, durable settings (fsync on; not the tests' fast mode; `BENCH_PG_FAST=1`
 * runs it without fsync, which takes the disk's flushes out of the live latencies). The writer
 * session uses synchronous_commit=off only to create the backlog quickly.
 * BENCH_CDC_CHANGES (default 100000) and BENCH_CDC_SECONDS (live run, default 120) scale it;
 * BENCH_CDC_PROFILE=<file.cpuprofile> writes a CPU profile of the catch-up (b) alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, WORKER_NODE_FLAGS } from '@sync/cdc/constants';
import { PgoutputDecoder, type PgoutputMessage } from '@sync/cdc/pgoutput-decoder';
import { ReplicationConnection } from '@sync/cdc/replication-connection';
import { batchOfParts } from '@sync/cdc/replication-stream';
import { TransactionAssembler, type TransactionPart } from '@sync/cdc/transaction-assembler';
import { startCdcWorker } from '@sync/cdc/worker';
import { DEFAULT_SLOT_NAME, NOTIFY_CHANNEL, PUBLICATION_NAME } from '@sync/db/constants';
import { startEmbeddedPostgres } from '@sync/db/embedded-postgres';
import { runMigrations } from '@sync/db/migrations';
import { parseActivityNotification } from '@sync/db/notification';
import { prepareReplication } from '@sync/db/replication-setup';
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import pino from 'pino';
import postgres from 'postgres';
import { profiledTo } from '../support/cpu-profile.ts';

const CHANGES = Number(process.env.BENCH_CDC_CHANGES ?? 100_000);
const LIVE_SECONDS = Number(process.env.BENCH_CDC_SECONDS ?? 120);
const LIVE_RATE = 1_000;
const ORGANIZATIONS = 20;
const BASELINE_SLOT = 'bench_baseline';
const DECODER_SLOT = 'bench_decoder';
const PAYLOAD_SLOT = 'bench_payloads';
const PARSER_ROUNDS = 5;
const RECVLOGICAL_SLOT = 'bench_recvlogical';
/** A reference tool of the machine, not of the product: the bench skips it when it is absent. */
const PG_RECVLOGICAL = '/usr/lib/postgresql/15/bin/pg_recvlogical';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function run(): Promise<void> {
  const cluster = await startEmbeddedPostgres({ fast: process.env.BENCH_PG_FAST === '1' });
  const sql = postgres(cluster.url, { onnotice: () => {}, max: 8 });
  const quiet = pino({ level: 'warn' });
  try {
    await runMigrations(cluster.url);
    await seedOrganizations(sql);
    await prepareReplication(sql, cluster.url, DEFAULT_SLOT_NAME, quiet);
    await sql`select pg_create_logical_replication_slot(${BASELINE_SLOT}, 'pgoutput')`;
    await sql`select pg_create_logical_replication_slot(${DECODER_SLOT}, 'pgoutput')`;
    await sql`select pg_create_logical_replication_slot(${PAYLOAD_SLOT}, 'pgoutput')`;
    const recvlogical = existsSync(PG_RECVLOGICAL);
    if (recvlogical) await sql`select pg_create_logical_replication_slot(${RECVLOGICAL_SLOT}, 'pgoutput')`;

    const writeStarted = performance.now();
    await writeBacklog(sql, CHANGES);
    const writeSeconds = (performance.now() - writeStarted) / 1000;
    console.log(
      `backlog: ${CHANGES} single-row transactions (60% insert, 30% update, 10% soft delete) in ${writeSeconds.toFixed(1)} s`,
    );

    const [end] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
    const ceiling = recvlogical
      ? await decodeWithPgRecvlogical(sql, cluster.url, end?.lsn ?? '0/0', CHANGES)
      : null;
    const baseline = await decodeWithoutSink(sql, cluster.url, CHANGES);
    const ownDecoder = await decodeWithWorkerConnection(sql, cluster.url, CHANGES);
    const parsers = await parsersAlone(sql);
    const profileFile = process.env.BENCH_CDC_PROFILE;
    const worker = await profiledTo(profileFile, () => catchUpWithWorker(sql, cluster.url, CHANGES, quiet));
    if (profileFile) console.log(`CPU profile of the catch-up: ${profileFile}`);
    const [written] = await sql<{ count: number }[]>`select count(*)::int as count from activities`;
    if (written?.count !== CHANGES)
      throw new Error(`expected ${CHANGES} activities, found ${written?.count}`);

    const live = await liveRun(sql, cluster.url, LIVE_SECONDS);

    printTable(
      ['figure', 'value', 'baseline / target'],
      [
        ceiling === null
          ? ['(p) pg_recvlogical', `not found at ${PG_RECVLOGICAL}`, 'ceiling']
          : ['(p) pg_recvlogical, pgoutput → /dev/null', `${fmt(ceiling.perSecond)} changes/s`, 'ceiling'],
        ['(a) library decode, no sink', `${fmt(baseline.perSecond)} changes/s`, 'baseline'],
        [
          "(a') the worker's connection and decoder, no sink",
          `${fmt(ownDecoder.perSecond)} changes/s`,
          `CPU µs per change: ${micros(ownDecoder.cpu.client)}, (a) ${micros(baseline.cpu.client)}`,
        ],
        [
          "(a'') the parsers alone: worker's decoder / library's",
          `${parsers.decoder.toFixed(1)} / ${parsers.library.toFixed(1)} µs CPU per change`,
          `${(parsers.decoder / parsers.library).toFixed(2)}x (median of ${PARSER_ROUNDS} rounds each)`,
        ],
        [
          "(m) the worker's decoder and mapping, in memory",
          `${parsers.mapping.toFixed(1)} µs CPU per change`,
          'decode, map, encode COPY rows, cut batches',
        ],
        ['(b) worker catch-up', `${fmt(worker.perSecond)} activities/s`, '≥ 50,000/s'],
        ...(ceiling === null
          ? []
          : [['(b)/(p)', `${(worker.perSecond / ceiling.perSecond).toFixed(2)}x`, '≥ 0.80x']]),
        ['(a)/(p)', ceiling === null ? '' : `${(baseline.perSecond / ceiling.perSecond).toFixed(2)}x`, ''],
        ['(b)/(a)', `${(worker.perSecond / baseline.perSecond).toFixed(2)}x`, ''],
        [
          '(b) CPU during catch-up: worker / walsender / writers',
          `${share(worker.cpu, 'client')} / ${share(worker.cpu, 'walsender')} / ${share(worker.cpu, 'writers')} of a core`,
          '',
        ],
        [
          '(b) CPU µs per activity: worker / walsender / writers',
          `${micros(worker.cpu.client)} / ${micros(worker.cpu.walsender)} / ${micros(worker.cpu.writers)}`,
          `(a): library ${micros(baseline.cpu.client)} / walsender ${micros(baseline.cpu.walsender)}${
            ceiling === null ? '' : `; (p): walsender ${micros(ceiling.cpu.walsender)}`
          }`,
        ],
        [
          `(c) live p50 commit→activity (${fmt(live.writesPerSecond)} writes/s)`,
          `${live.p50.toFixed(1)} ms`,
          '',
        ],
        ['(c) live p99 commit→activity', `${live.p99.toFixed(1)} ms`, '≤ 40 ms'],
        [
          '(c) live max (largest stall)',
          `${live.max.toFixed(1)} ms`,
          `at +${(live.maxAtMs / 1000).toFixed(1)} s`,
        ],
        [
          '(c) checkpoints during the live run',
          `${live.checkpoints} (write + sync ${fmt(live.checkpointWriteSyncMs)} ms)`,
          '',
        ],
        [
          '(c) worker start → first new activity',
          `${fmt(live.firstActivityMs)} ms`,
          `re-decodes ${(live.restartGapBytes / 2 ** 20).toFixed(1)} MB of WAL from restart_lsn`,
        ],
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

/** (p) PostgreSQL's decoding alone: pg_recvlogical reads the slot to `endLsn` and exits. */
async function decodeWithPgRecvlogical(
  sql: postgres.Sql,
  url: string,
  endLsn: string,
  expected: number,
): Promise<CatchUp> {
  const started = performance.now();
  const walsender = watchBackendCpu(sql, ['pg_recvlogical']);
  const child = spawn(
    PG_RECVLOGICAL,
    [
      '-d',
      url,
      '--slot',
      RECVLOGICAL_SLOT,
      '--start',
      '--no-loop',
      '-o',
      'proto_version=1',
      '-o',
      `publication_names=${PUBLICATION_NAME}`,
      '-E',
      endLsn,
      '-f',
      '/dev/null',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const seconds = (performance.now() - started) / 1000;
  const server = walsender.stop();
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}`);
  return {
    perSecond: expected / seconds,
    // pg_recvlogical only copies bytes to /dev/null: its own CPU is left out
    cpu: { seconds, client: 0, walsender: server.pg_recvlogical ?? 0, writers: 0 },
  };
}

/** (a) The library alone: count changes, acknowledge each commit, nothing else. */
async function decodeWithoutSink(sql: postgres.Sql, url: string, expected: number): Promise<CatchUp> {
  const service = new LogicalReplicationService(
    { connectionString: url, application_name: 'bench-baseline' },
    { acknowledge: { auto: false, timeoutSeconds: 0 } },
  );
  let changes = 0;
  let started = 0;
  let cpuStart = process.cpuUsage();
  const walsender = watchBackendCpu(sql, ['bench-baseline']);
  const done = new Promise<number>((resolve, reject) => {
    service.on('start', () => {
      started = performance.now();
      cpuStart = process.cpuUsage();
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
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION_NAME] });
  service.subscribe(plugin, BASELINE_SLOT).catch(() => {});
  const ms = await done;
  const used = process.cpuUsage(cpuStart);
  const server = walsender.stop();
  await service.destroy();
  return noSinkResult(expected, ms, used, server['bench-baseline'] ?? 0);
}

/** (a') The same with the worker's replication connection and decoder (acknowledging each commit too). */
async function decodeWithWorkerConnection(
  sql: postgres.Sql,
  url: string,
  expected: number,
): Promise<CatchUp> {
  let changes = 0;
  let started = 0;
  let cpuStart = process.cpuUsage();
  const walsender = watchBackendCpu(sql, ['bench-baseline']);
  let resolveDone: (ms: number) => void = () => {};
  let rejectDone: (error: Error) => void = () => {};
  const done = new Promise<number>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const connection = new ReplicationConnection(
    { connectionString: url, application_name: 'bench-baseline' },
    {
      onStart: () => {
        started = performance.now();
        cpuStart = process.cpuUsage();
      },
      onMessage: (message: PgoutputMessage) => {
        if (message.tag === 'insert' || message.tag === 'update' || message.tag === 'delete') changes++;
        if (message.tag === 'commit') {
          connection.sendStatus(message.commitLsn + 1n, false);
          if (changes >= expected) resolveDone(performance.now() - started);
        }
      },
      onKeepalive: () => {},
      onError: (error) => rejectDone(error),
    },
  );
  connection.stream(DECODER_SLOT, PUBLICATION_NAME).catch(() => {});
  const ms = await done;
  const used = process.cpuUsage(cpuStart);
  const server = walsender.stop();
  await connection.close();
  return noSinkResult(expected, ms, used, server['bench-baseline'] ?? 0);
}

/**
 * (a'') The two parsers on the same pgoutput payloads, read from a slot of their own into memory:
 * what decoding alone costs, apart from the connection. Median CPU µs per change of alternating
 * rounds (the first round of each warms up and is left out).
 */
async function parsersAlone(
  sql: postgres.Sql,
): Promise<{ decoder: number; library: number; mapping: number }> {
  const rows = await sql<{ data: Buffer }[]>`
    select data from pg_logical_slot_peek_binary_changes(${PAYLOAD_SLOT}, null, null,
      'proto_version', '1', 'publication_names', ${PUBLICATION_NAME})`;
  const payloads = rows.map((row) => row.data);
  const changes = payloads.filter((p) => p[0] === 0x49 || p[0] === 0x55 || p[0] === 0x44).length;
  const perChange = { decoder: [] as number[], library: [] as number[], mapping: [] as number[] };
  for (let round = 0; round <= PARSER_ROUNDS; round++) {
    const decoder = new PgoutputDecoder();
    const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION_NAME] });
    const decoderCpu = cpuMicrosOf(() => {
      for (const payload of payloads) decoder.decode(payload);
    });
    const libraryCpu = cpuMicrosOf(() => {
      for (const payload of payloads) library.parse(payload);
    });
    const mappingCpu = cpuMicrosOf(() => mapInMemory(payloads));
    if (round === 0) continue;
    perChange.decoder.push(decoderCpu / changes);
    perChange.library.push(libraryCpu / changes);
    perChange.mapping.push(mappingCpu / changes);
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  return {
    decoder: median(perChange.decoder),
    library: median(perChange.library),
    mapping: median(perChange.mapping),
  };
}

/** What the worker does with the messages before the sink: parts of activities, then batches. */
function mapInMemory(payloads: readonly Buffer[]): void {
  const decoder = new PgoutputDecoder();
  const nothingWritten = { lastLsn: 0n, open: null };
  let parts: TransactionPart[] = [];
  let activities = 0;
  const assembler = new TransactionAssembler(DEFAULTS.batchSize, (part) => {
    parts.push(part);
    activities += part.activityCount;
    if (activities < DEFAULTS.batchSize) return;
    batchOfParts(parts, nothingWritten);
    parts = [];
    activities = 0;
  });
  assembler.setWritten(nothingWritten);
  for (const payload of payloads) assembler.receive(decoder.decode(payload));
}

function cpuMicrosOf(work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function noSinkResult(expected: number, ms: number, used: NodeJS.CpuUsage, walsender: number): CatchUp {
  return {
    perSecond: (expected / ms) * 1000,
    cpu: { seconds: ms / 1000, client: (used.user + used.system) / 1e6, walsender, writers: 0 },
  };
}

/** CPU seconds of a process so far (utime + stime from /proc, in clock ticks of 10 ms). */
async function cpuSeconds(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/**
 * CPU seconds the server processes of the given application names use from now to `stop()`:
 * every 20 ms each backend's CPU time is read, so one that exits (pg_recvlogical's walsender)
 * counts up to its last sample.
 */
function watchBackendCpu(sql: postgres.Sql, names: readonly string[]): { stop(): Record<string, number> } {
  const backends = new Map<number, { name: string; first: number; last: number }>();
  let sampling = Promise.resolve();
  const sample = setInterval(() => {
    sampling = sampling.then(async () => {
      const rows = await sql<{ pid: number; application_name: string }[]>`
        select pid, application_name from pg_stat_activity where application_name in ${sql(names)}`;
      for (const row of rows) {
        const cpu = await cpuSeconds(row.pid);
        if (cpu === null) continue;
        const known = backends.get(row.pid);
        if (known) known.last = cpu;
        else backends.set(row.pid, { name: row.application_name, first: cpu, last: cpu });
      }
    });
  }, 20);
  return {
    stop() {
      clearInterval(sample);
      const totals: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
      for (const b of backends.values()) totals[b.name] = (totals[b.name] ?? 0) + b.last - b.first;
      return totals;
    },
  };
}

/** CPU seconds on each side, and the wall time they were spent in. */
interface CpuUse {
  seconds: number;
  /** The decoding (or worker) process itself. */
  client: number;
  /** The walsender that decodes the WAL for it. */
  walsender: number;
  /** The worker's writer connections (COPY, counts, commit). */
  writers: number;
}

interface CatchUp {
  perSecond: number;
  cpu: CpuUse;
}

/** (b) From worker start to the last activity committed, with each side's CPU use. */
async function catchUpWithWorker(
  sql: postgres.Sql,
  url: string,
  expected: number,
  logger: pino.Logger,
): Promise<CatchUp> {
  let inserted = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const started = performance.now();
  const workerCpuStart = process.cpuUsage();
  const backends = watchBackendCpu(sql, ['sync-cdc', 'sync-cdc-writer']);
  const worker = startCdcWorker({
    databaseUrl: url,
    logger,
    onBatch: (batch) => {
      inserted += batch.activities;
      if (inserted >= expected) resolveDone();
    },
  });
  await done;
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(workerCpuStart);
  const server = backends.stop();
  await worker.stop();
  return {
    perSecond: expected / seconds,
    cpu: {
      seconds,
      client: (used.user + used.system) / 1e6,
      walsender: server['sync-cdc'] ?? 0,
      writers: server['sync-cdc-writer'] ?? 0,
    },
  };
}

interface LiveResult {
  writesPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** When the largest latency happened, from the start of the live run. */
  maxAtMs: number;
  /** WAL between the slot's restart_lsn and its confirmed position when the worker starts. */
  restartGapBytes: number;
  /** Worker spawned → the first new change has its activity. */
  firstActivityMs: number;
  /** Checkpoints that ran during the live run, and their write + sync time. */
  checkpoints: number;
  checkpointWriteSyncMs: number;
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
    const [slot] = await sql<{ gap: string }[]>`
      select pg_wal_lsn_diff(confirmed_flush_lsn, restart_lsn)::int8::text as gap
      from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
    const spawned = performance.now();
    await waitForStreaming(sql);
    // A new walsender decodes again from the slot's restart_lsn before it sends anything new:
    // wait for a first change to come through, so the live figures are the steady state.
    await sql`
      insert into pages (id, organization_id, created_by, transactions, last_client_id, title)
      values ('live_probe', 'org_0', 'bench_user', ${sql.json({ insert: 'tx_live_probe', update: null, delete: null })}, 'client_live', 'Probe')`;
    await waitFor(async () => {
      const [row] = await sql`select 1 from activities where transaction_id = 'tx_live_probe'`;
      return row !== undefined;
    });
    const firstActivityMs = performance.now() - spawned;
    const rssStart = await rssMb(child);
    let rssPeak = rssStart;

    const latencies: number[] = [];
    const liveStarted = Date.now();
    let worst = { ms: 0, atMs: 0 };
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
        for (const row of rows) {
          const latency = arrivedAt - Number(row.commit_ms);
          latencies.push(latency);
          if (latency > worst.ms) worst = { ms: latency, atMs: arrivedAt - liveStarted };
        }
        if (rows.length > 0) lastSeen = rows.at(-1)!.lsn;
      });
    });

    const sampler = setInterval(() => {
      void rssMb(child).then((mb) => {
        rssPeak = Math.max(rssPeak, mb);
      });
    }, 1_000);
    const checkpointsBefore = await checkpointStats(sql);
    const writes = await steadyWrites(sql, seconds);
    const checkpointsAfter = await checkpointStats(sql);
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
      maxAtMs: worst.atMs,
      restartGapBytes: Number(slot?.gap ?? 0),
      firstActivityMs,
      checkpoints: checkpointsAfter.count - checkpointsBefore.count,
      checkpointWriteSyncMs: checkpointsAfter.writeSyncMs - checkpointsBefore.writeSyncMs,
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

/** PostgreSQL 17's checkpointer statistics (an older server has them in pg_stat_bgwriter). */
async function checkpointStats(sql: postgres.Sql): Promise<{ count: number; writeSyncMs: number }> {
  const [row] = await sql<{ count: number; ms: number }[]>`
    select (num_timed + num_requested)::int as count, (write_time + sync_time)::float8 as ms from pg_stat_checkpointer`;
  return { count: row?.count ?? 0, writeSyncMs: row?.ms ?? 0 };
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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

/** CPU µs per change of the backlog. */
function micros(seconds: number): string {
  return ((seconds / CHANGES) * 1e6).toFixed(1);
}

/** Share of one core a side used during its run. */
function share(cpu: CpuUse, side: 'client' | 'walsender' | 'writers'): string {
  return `${Math.round((cpu[side] / cpu.seconds) * 100)}%`;
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

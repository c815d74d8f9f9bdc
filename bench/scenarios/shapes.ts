/**
 * Scenario `shapes`, with the official Electric client against our shape endpoint:
 *   1. initial sync of a 100,000-row shape with the pinned and the latest client, and the server
 *      alone (every chunk to its last byte), beside a plain paginated REST read of the same rows;
 *      each once read (after a change, so nothing held) and once from the snapshot held since;
 *      and the same with the rows narrowed by `columns` (NARROW_COLUMNS) beside the full row;
 *      each client beside its floor: the same client on the bytes the server sent in the "read"
 *      run, replayed from memory by a process that does nothing else (bench/support/floor-server.ts);
 *   2. write confirmation: from sending a write to `matchStream` resolving, at 200 writes/s,
 *      beside the write's own response time;
 *   3. fan-out: 1,000 raw long-polls (the server's side), then 1,000 live official clients in
 *      separate processes on one shape (long-poll, on Node's fetch and on undici's request, then
 *      SSE) receive three changes one after another, beside one client alone; p99 delivery, the
 *      CPU of each side and API RSS per client.
 */

import { type ChildProcess, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { Shape as LatestShape, ShapeStream as LatestShapeStream } from '@electric-sql/client-latest';
import { matchStream } from '@electric-sql/experimental';
import { NOTIFY_CHANNEL } from '@sync/db/constants';
import { parseActivityId } from '@sync/db/lsn';
import { parseActivityNotification } from '@sync/db/notification';
import postgres from 'postgres';
import { Pool } from 'undici';
import { ApiClient, type Member } from '../../backend/src/api-client.ts';
import { type ClientFloor, recordResponse, startClientFloor } from '../support/client-floor.ts';
import { profiled, selfTimeTop } from '../support/cpu-profile.ts';
import type {
  FanOutFetch,
  FanOutMessage,
  FanOutReport,
  FanOutWorkerOptions,
} from '../support/fanout-worker.ts';
import type { RecordedResponse } from '../support/floor-server.ts';
import { printTable } from '../support/load.ts';
import { type ProcessTrace, startProcessTrace } from '../support/process-trace.ts';
import { rawGet } from '../support/raw-get.ts';
import { startBenchStack } from '../support/stack.ts';

const ROWS = Number(process.env.BENCH_SHAPE_ROWS ?? 100_000);
const CONFIRM_RATE = Number(process.env.BENCH_CONFIRM_RATE ?? 200);
const CONFIRM_SECONDS = Number(process.env.BENCH_CONFIRM_SECONDS ?? 10);
const CONFIRM_WARM_UP_SECONDS = 3;
const FANOUT_CLIENTS = Number(process.env.BENCH_FANOUT_CLIENTS ?? 1_000);
/**
 * Client processes of the fan-out: one per core (at least two), which measured less CPU per
 * change than twice as many on the same cores. `BENCH_FANOUT_PROCESSES=2,4`: the long-poll
 * fan-out once per process count (SSE: the first).
 */
const FANOUT_PROCESSES = (process.env.BENCH_FANOUT_PROCESSES ?? String(Math.max(2, availableParallelism())))
  .split(',')
  .map(Number);
/** Changes one after another to the same clients: the first meets code the client processes have not compiled yet. */
const FANOUT_CHANGES = Number(process.env.BENCH_FANOUT_CHANGES ?? 3);
/** `BENCH_FANOUT_FETCH=undici`: the clients' fetch (bench/support/lean-fetch.ts); unset, both are run. */
const FANOUT_FETCH: FanOutFetch = process.env.BENCH_FANOUT_FETCH === 'undici' ? 'undici' : 'global';
/** The official client's versions: the one the web client pins, and the latest. */
const PINNED_CLIENT = '1.5.12';
const LATEST_CLIENT = '1.5.28';
type ClientVersion = typeof PINNED_CLIENT | typeof LATEST_CLIENT;
/** Syncs of each client from its floor server (bench/support/floor-server.ts); the fastest is its floor. */
const FLOOR_RUNS = Number(process.env.BENCH_FLOOR_RUNS ?? 3);
/** The narrowed shape of the sync part: 3 of the 11 columns of a page (8 JSON values a row instead of 16). */
const NARROW_COLUMNS = ['id', 'title', 'modified_at'];
/**
 * `BENCH_SHAPES_PARTS=sync,confirm,fanout` (the default: all three) runs only those parts;
 * `rawfanout` only the fan-out's raw long-polls.
 */
const PARTS = new Set((process.env.BENCH_SHAPES_PARTS ?? 'sync,confirm,fanout').split(','));
/** Reported rounds of the raw fan-out (after one unreported): the server's side of one change to 1,000 long-polls. */
const RAW_FANOUT_ROUNDS = Number(process.env.BENCH_FANOUT_RAW_ROUNDS ?? 3);
/**
 * Raw fan-out rounds run first and printed as warming up: a freshly started API's compiler is
 * still optimizing its answer path for the first few thousand answers (in those rounds the
 * process spends about twice its main thread's CPU), which a long-running server is past.
 */
const RAW_FANOUT_WARMUP_ROUNDS = Number(process.env.BENCH_FANOUT_RAW_WARMUP ?? 3);

const percentile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

export async function run(): Promise<void> {
  const stack = await startBenchStack({ cdc: true });
  const client = new ApiClient(stack.apiUrl);
  const sql = postgres(stack.cluster.url, { onnotice: () => {} });
  const controllers: AbortController[] = [];
  const stream = (member: Member, fetchClient?: typeof fetch) => {
    const controller = new AbortController();
    controllers.push(controller);
    return new ShapeStream<Row>({
      url: `${stack.apiUrl}/api/organizations/${member.org.id}/shapes/pages`,
      headers: { authorization: `Bearer ${member.token}` },
      signal: controller.signal,
      ...(fetchClient ? { fetchClient } : {}),
    });
  };
  try {
    await waitForCdc(client);

    if (PARTS.has('sync')) await initialSync();
    if (PARTS.has('confirm')) await confirmation();
    if (PARTS.has('fanout') || PARTS.has('rawfanout')) await fanOutAll(PARTS.has('fanout'));
  } finally {
    for (const controller of controllers) controller.abort();
    await sql.end();
    await stack.stop();
  }

  async function initialSync() {
    const big = await client.newMember();
    await sql`
      insert into pages (id, organization_id, title, content, created_by, transactions)
      select 'bulk-' || lpad(i::text, 8, '0'), ${big.org.id}, 'Page ' || i, repeat('x', 100), ${big.user.id},
             jsonb_build_object('insert', 'bulk-tx-' || i, 'update', null, 'delete', null)
      from generate_series(1, ${ROWS}) as i`;
    await sql`analyze pages`;
    await waitForActivities(sql, big.org.id, ROWS); // the worker's catch-up would compete with the reads
    const restApiCpu = stack.apiCpuMs();
    const restStarted = performance.now();
    let restRows = 0;
    let cursor: string | null = null;
    do {
      const page: any = await client.request(
        'GET',
        `/api/organizations/${big.org.id}/pages?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
        { token: big.token },
      );
      restRows += page.body.items.length;
      cursor = page.body.nextCursor;
    } while (cursor);
    const restMs = performance.now() - restStarted;
    const restApiCpuMs = stack.apiCpuMs() - restApiCpu;
    const shapeUrl = `${stack.apiUrl}/api/organizations/${big.org.id}/shapes/pages`;
    const headers = { authorization: `Bearer ${big.token}` };
    // the server alone: every chunk fetched in turn, bodies read and dropped, nothing parsed;
    // with `recorded`, each response is kept there for the client's floor (below)
    const narrowParam = NARROW_COLUMNS.map((name) => `"${name}"`).join(',');
    const serverAlone = async (narrowed: boolean, recorded?: RecordedResponse[]) => {
      const apiCpu = stack.apiCpuMs();
      const started = performance.now();
      let bytes = 0;
      let chunks = 0;
      const columns: Record<string, string> = narrowed ? { columns: narrowParam } : {};
      let next: string | null =
        `${shapeUrl}?${new URLSearchParams({ offset: '-1', log: 'full', ...columns })}`;
      while (next) {
        const res: Response = await fetch(next, { headers });
        if (recorded) {
          const response = await recordResponse(next, res);
          recorded.push(response);
          bytes += response.body.byteLength;
        } else {
          bytes += (await res.arrayBuffer()).byteLength;
        }
        chunks++;
        const params = new URLSearchParams({
          handle: res.headers.get('electric-handle') ?? '',
          log: 'full',
          offset: res.headers.get('electric-offset') ?? '',
          ...columns,
        });
        next = res.headers.has('electric-up-to-date') ? null : `${shapeUrl}?${params}`;
      }
      return { ms: performance.now() - started, apiCpuMs: stack.apiCpuMs() - apiCpu, bytes, chunks };
    };
    // a snapshot is held for the next client while nothing is logged: a change before a run
    // makes it read anew ("read"), the run after it gets the held chunks ("held")
    let changes = 0;
    const change = async () => {
      changes++;
      await sql`update pages set title = ${`Page 1, changed ${changes}`} where id = 'bulk-00000001'`;
      await waitForActivities(sql, big.org.id, ROWS + changes);
    };
    const recorded: RecordedResponse[] = [];
    const serverRead = await serverAlone(false, recorded);
    const serverHeld = await serverAlone(false);
    const narrowServerRead = await serverAlone(true, recorded);
    const narrowServerHeld = await serverAlone(true);
    // the client's floor: the chunks of the two "read" runs, served from memory by a process
    // that does nothing else (bench/support/floor-server.ts), to the same clients
    const floor = await startClientFloor(recorded);
    try {
      await clientSyncs(floor);
    } finally {
      await floor.stop();
    }

    async function clientSyncs(floor: ClientFloor) {
      // the clients run in this process: its CPU time during a sync is theirs (parsing every row);
      // "first rows" is when the stream hands over its first batch of parsed rows
      const timed = async (
        stream: { subscribe(callback: () => void): () => void },
        rows: () => Promise<Row[]>,
      ) => {
        const apiCpu = stack.apiCpuMs();
        const t = performance.now();
        let firstRowsMs = 0;
        const unsubscribe = stream.subscribe(() => {
          firstRowsMs ||= performance.now() - t;
        });
        const cpu = process.cpuUsage();
        const synced = await rows();
        const used = process.cpuUsage(cpu);
        unsubscribe();
        const ms = performance.now() - t;
        return {
          rows: synced.length,
          ms,
          firstRowsMs,
          cpuMs: (used.user + used.system) / 1000,
          serverCpuMs: stack.apiCpuMs() - apiCpu,
        };
      };
      /** One sync of the shape at `url` (the API's, or the floor's) by `version` of the client. */
      const sync = (version: ClientVersion, url: string, narrowed: boolean, controller: AbortController) => {
        const options = {
          url,
          headers,
          signal: controller.signal,
          ...(narrowed ? { params: { columns: NARROW_COLUMNS } } : {}),
        };
        if (version === LATEST_CLIENT) {
          const latestStream = new LatestShapeStream<Row>(options);
          return timed(latestStream, () => new LatestShape(latestStream).rows);
        }
        const pinnedStream = new ShapeStream<Row>(options);
        return timed(pinnedStream, () => new Shape(pinnedStream).rows);
      };
      const apiSync = (version: ClientVersion, narrowed: boolean) => {
        const controller = new AbortController();
        controllers.push(controller);
        return sync(version, shapeUrl, narrowed, controller);
      };
      const floorUrl = `${floor.url}${new URL(shapeUrl).pathname}`;
      let floorAnswered = 0;
      let floorHeld = 0;
      const floorSync = async (version: ClientVersion, narrowed: boolean) => {
        const controller = new AbortController();
        const run = await sync(version, floorUrl, narrowed, controller);
        await floor.liveHeld(); // the client's live request, which the floor holds until this abort
        controller.abort();
        const report = await floor.report();
        floorAnswered += report.answered;
        floorHeld += report.held;
        return { ...run, serverCpuMs: report.cpuMs };
      };
      type ClientRun = Awaited<ReturnType<typeof timed>>;
      /** The same client on the same rows: read anew, held, and its floor. */
      const variant = async (version: ClientVersion, narrowed: boolean) => {
        await change();
        const read = await apiSync(version, narrowed);
        const held = await apiSync(version, narrowed);
        // the floor is the least the client needs: the fastest of FLOOR_RUNS, each on the same bytes
        let floorRun = await floorSync(version, narrowed);
        for (let i = 1; i < FLOOR_RUNS; i++) {
          const again = await floorSync(version, narrowed);
          if (again.ms < floorRun.ms) floorRun = again;
        }
        const label = `Electric client ${version}${narrowed ? `, narrowed to ${NARROW_COLUMNS.length} columns` : ''}`;
        return [
          clientRow(`${label}, read`, read, floorRun),
          clientRow(`${label}, held`, held, floorRun),
          clientRow(`${label}, its floor (the read chunks from memory, fastest of ${FLOOR_RUNS})`, floorRun),
        ];
      };
      const versusRest = (ms: number) => `${(ms / restMs).toFixed(2)}x`;
      const megabytes = (run: { bytes: number }) => `${(run.bytes / 1e6).toFixed(1)} MB`;
      const server = (read: string, run: { ms: number; apiCpuMs: number }) => ({
        read,
        rows: ROWS,
        ms: run.ms.toFixed(0),
        'vs the client floor': '',
        'time vs REST': versusRest(run.ms),
        'first rows ms': '',
        'client CPU ms': '',
        'server CPU ms': run.apiCpuMs,
      });
      const clientRow = (read: string, run: ClientRun, floorRun?: ClientRun) => ({
        read,
        rows: run.rows,
        ms: run.ms.toFixed(0),
        'vs the client floor': floorRun
          ? `${(run.ms / floorRun.ms).toFixed(2)}x of ${floorRun.ms.toFixed(0)} ms`
          : '(floor)',
        'time vs REST': versusRest(run.ms),
        'first rows ms': run.firstRowsMs.toFixed(0),
        'client CPU ms': run.cpuMs.toFixed(0),
        'server CPU ms': run.serverCpuMs.toFixed(0),
      });
      const clientRows = [
        ...(await variant(LATEST_CLIENT, false)),
        ...(await variant(LATEST_CLIENT, true)),
        ...(await variant(PINNED_CLIENT, false)),
        ...(await variant(PINNED_CLIENT, true)),
      ];
      console.log(
        `initial sync of ${ROWS.toLocaleString()} rows (${serverRead.chunks} chunks, ${megabytes(serverRead)}; narrowed to ${NARROW_COLUMNS.join(', ')}: ${megabytes(narrowServerRead)}); the floor server answered every request of its clients: ${floorAnswered} chunks, and ${floorHeld} live requests held until aborted`,
      );
      printTable([
        server('server alone, read: every chunk to its last byte', serverRead),
        server('server alone, held (nothing logged since)', serverHeld),
        server(`server alone, narrowed to ${NARROW_COLUMNS.length} columns, read`, narrowServerRead),
        server(`server alone, narrowed to ${NARROW_COLUMNS.length} columns, held`, narrowServerHeld),
        ...clientRows,
        {
          read: 'REST, 500 per page (baseline)',
          rows: restRows,
          ms: restMs.toFixed(0),
          'vs the client floor': '',
          'time vs REST': '(baseline)',
          'first rows ms': '',
          'client CPU ms': '',
          'server CPU ms': restApiCpuMs,
        },
      ]);
      // BENCH_CLIENT_PROFILE=<dir>: one more floor sync of the latest client on full rows, profiled
      const profileDir = process.env.BENCH_CLIENT_PROFILE;
      if (profileDir) {
        const { profile } = await profiled(() => floorSync(LATEST_CLIENT, false), 100); // µs: 10,000 samples a second
        const file = join(profileDir, `client-floor-${LATEST_CLIENT}.cpuprofile`);
        writeFileSync(file, JSON.stringify(profile));
        console.log(
          `\nwhere client ${LATEST_CLIENT}'s time goes on its floor, full rows (self time; ${file}):`,
        );
        for (const { where, ms, share } of selfTimeTop(profile, 12)) {
          console.log(
            `  ${(share * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(5)} ms  ${where}`,
          );
        }
      }
    }
  }

  async function confirmation() {
    // BENCH_TRACE=1: this process's timeline too, for the breakdown of the slowest writes
    const benchTrace = process.env.BENCH_TRACE === '1' ? startProcessTrace('bench') : undefined;
    const walBefore = await walStats(sql);
    const writer = await client.newMember();
    // the writes go out on kept-alive connections of undici's pool: about a fifth of the CPU
    // of a `fetch` per request, in a process that shares the two cores with the stack
    const sender = new Pool(stack.apiUrl, { connections: 16 });
    // every live request of the stream: when it was sent and when its answer's headers came
    const requests: { sent: number; answered?: number; offset?: { lsn: bigint; position: number } }[] = [];
    const timedFetch: typeof fetch = async (input, init) => {
      const request: (typeof requests)[number] = { sent: performance.now() };
      const res = await fetch(input, init);
      const offset = res.headers.get('electric-offset');
      if (String(input).includes('live=true') && offset && /^\d+_\d+$/.test(offset)) {
        request.answered = performance.now();
        const { lsn, position } = parseActivityId(offset);
        request.offset = { lsn: BigInt(lsn), position };
        requests.push(request);
      }
      return res;
    };
    const confirmStream = stream(writer, timedFetch);
    await new Shape(confirmStream).rows;
    // the worker's NOTIFY after each batch, as the API hears it: the split between the worker
    // (send → its activity committed) and the stream (that NOTIFY → matchStream resolves)
    const notified: { lsn: bigint; position: number; at: number }[] = [];
    const listener = await sql.listen(NOTIFY_CHANNEL, (payload) => {
      const at = performance.now();
      const id = parseActivityNotification(payload)?.id;
      if (!id) return;
      const { lsn, position } = parseActivityId(id);
      notified.push({ lsn: BigInt(lsn), position, at });
    });
    type Write = { tx: string; sent: number; responded?: number; confirmed?: number };
    /** `count` writes at CONFIRM_RATE, each timed from its send to its response and its match. */
    const sendWrites = async (count: number, label: string): Promise<Write[]> => {
      const sent: Write[] = [];
      const pending: Promise<void>[] = [];
      const from = performance.now();
      for (let i = 0; i < count; i++) {
        const due = from + (i * 1000) / CONFIRM_RATE;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const write: Write = { tx: `${label}-${i}-${Date.now().toString(36)}`, sent: performance.now() };
        sent.push(write);
        const confirmed = matchStream(
          confirmStream,
          ['insert'],
          (m: any) => m.value.transactions?.insert === write.tx,
          30_000,
        );
        pending.push(
          postOnce(sender, `/api/organizations/${writer.org.id}/pages`, writer.token, write.tx)
            .then(() => {
              write.responded = performance.now();
              return confirmed;
            })
            .then(() => {
              write.confirmed = performance.now();
            }),
        );
      }
      await Promise.all(pending);
      return sent;
    };
    // a server just started compiles its hot paths (and the client its) during its first
    // seconds of writes: those are reported on their own row, and the figures are of the run after
    const warmUp = await sendWrites(CONFIRM_RATE * CONFIRM_WARM_UP_SECONDS, 'warm-up');
    const started = performance.now();
    const cpuBefore = { ...stack.cpuMsByProcess(), bench: process.cpuUsage() };
    const total = CONFIRM_RATE * CONFIRM_SECONDS;
    const writes = await sendWrites(total, 'confirm');
    const cpuAfter = stack.cpuMsByProcess();
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    await listener.unlisten();
    await sender.close();
    const logged = await sql<{ transaction_id: string; lsn: string; position: number; committed: number }[]>`
      select transaction_id, lsn::text as lsn, position,
             extract(epoch from created_at)::float8 * 1000 as committed
      from activities
      where organization_id = ${writer.org.id} and transaction_id = any(${writes.map((w) => w.tx)})`;
    const loggedAt = new Map(
      logged.map((row) => [
        row.transaction_id,
        { lsn: BigInt(row.lsn), position: row.position, committed: row.committed },
      ]),
    );
    /** When the NOTIFY of the batch holding a write's activity arrived. */
    const notifiedAt = (tx: string) => {
      const at = loggedAt.get(tx);
      const batch =
        at && notified.find((n) => n.lsn > at.lsn || (n.lsn === at.lsn && n.position >= at.position));
      return batch?.at;
    };
    const figures = (label: string, values: number[]) => {
      const sorted = values.sort((a, b) => a - b);
      return {
        figure: label,
        'p50 ms': percentile(sorted, 0.5).toFixed(1),
        'p99 ms': percentile(sorted, 0.99).toFixed(1),
        'max ms': (sorted.at(-1) ?? 0).toFixed(1),
      };
    };
    /** The live request whose answer carried a write's activity: the first that reached past it. */
    const answeredBy = (tx: string) => {
      const at = loggedAt.get(tx);
      return at
        ? requests.find(
            (r) =>
              r.offset &&
              (r.offset.lsn > at.lsn || (r.offset.lsn === at.lsn && r.offset.position >= at.position)),
          )
        : undefined;
    };
    const split = writes.flatMap((w) => {
      const at = notifiedAt(w.tx);
      const request = answeredBy(w.tx);
      return at === undefined || w.confirmed === undefined || request?.answered === undefined
        ? []
        : [
            {
              worker: at - w.sent,
              stream: w.confirmed - at,
              // the answer came to a request that was already waiting when the NOTIFY arrived
              waiting: request.sent <= at,
              response: request.answered - Math.max(at, request.sent),
              client: w.confirmed - request.answered,
            },
          ];
    });
    const waiting = split.filter((s) => s.waiting);
    const reArmed = split.filter((s) => !s.waiting);
    console.log(
      `\nwrite confirmation (send → matchStream resolves), ${total} writes at ${CONFIRM_RATE}/s after ${warmUp.length} to warm up`,
    );
    printTable([
      figures(
        'send → matchStream resolves',
        writes.map((w) => (w.confirmed ?? 0) - w.sent),
      ),
      figures(
        `  the same in the ${CONFIRM_WARM_UP_SECONDS} s of writes before (warm-up, not in the other rows)`,
        warmUp.map((w) => (w.confirmed ?? 0) - w.sent),
      ),
      figures(
        'send → write response (baseline)',
        writes.map((w) => (w.responded ?? 0) - w.sent),
      ),
      figures(
        '  of which send → its batch NOTIFY (API + worker)',
        split.map((s) => s.worker),
      ),
      figures(
        '  of which NOTIFY → matchStream (the stream)',
        split.map((s) => s.stream),
      ),
      figures(
        `    NOTIFY → answer's headers, request already waiting (${waiting.length})`,
        waiting.map((s) => s.response),
      ),
      figures(
        `    NOTIFY → answer's headers, request sent after the NOTIFY (${reArmed.length})`,
        reArmed.map((s) => s.stream - s.client),
      ),
      figures(
        '    of those, request sent → answer',
        reArmed.map((s) => s.response),
      ),
      figures(
        "    answer's headers → matchStream (the client)",
        split.map((s) => s.client),
      ),
    ]);
    const perWrite = (ms: number) => `${((ms * 1000) / total).toFixed(0)} µs`;
    const liveRequests = requests.filter((r) => r.sent >= started).length;
    console.log(
      `  ${(liveRequests / total).toFixed(2)} live requests answered per write; CPU per write: this process (sender, client, listener) ${perWrite((benchCpu.user + benchCpu.system) / 1000)}, API ${perWrite(cpuAfter.api - cpuBefore.api)}, worker ${perWrite(cpuAfter.cdc - cpuBefore.cdc)}, PostgreSQL ${perWrite(cpuAfter.postgres - cpuBefore.postgres)}`,
    );
    if (benchTrace) {
      const traces = [benchTrace(), ...(await stack.traces())];
      printWriteTimelines(writes, traces, (tx) => {
        const at = loggedAt.get(tx);
        return at && { committed: at.committed, notified: notifiedAt(tx) };
      });
      printWalDelta(walBefore, await walStats(sql));
    }
  }

  async function fanOutAll(withClients: boolean) {
    /**
     * `clients` official clients spread over `processes` processes, then `changes` changes one
     * after another, each awaited by every client: a row per change. The clients disconnect only
     * after the last change, once every process has reported.
     */
    const fanOut = async (
      clients: number,
      processes: number,
      liveSse: boolean,
      changes: number,
      fetchClient: FanOutFetch = FANOUT_FETCH,
    ) => {
      const fan = await client.newMember();
      const rssBefore = stack.apiRssMiB();
      const options = (count: number): FanOutWorkerOptions => ({
        url: `${stack.apiUrl}/api/organizations/${fan.org.id}/shapes/pages`,
        token: fan.token,
        count,
        liveSse,
        fetchClient,
      });
      const workers = Array.from({ length: processes }, (_, i) =>
        fork(
          fileURLToPath(new URL('../support/fanout-worker.ts', import.meta.url)),
          // as even as can be: 1,000 clients in 3 processes are 334 + 333 + 333
          [JSON.stringify(options(Math.floor((clients + processes - 1 - i) / processes)))],
          { execArgv: ['--import', 'tsx'] },
        ),
      );
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
      const rows = [];
      for (let change = 1; change <= changes; change++) {
        rows.push(await fanOutChange(fan, workers, clients, liveSse, change));
      }
      const rssLive = stack.apiRssMiB();
      for (const w of workers) w.send({ stop: true } satisfies FanOutMessage);
      await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
      const label = `${clients} ${liveSse ? 'SSE' : `long-poll${fetchClient === 'undici' ? ', undici request' : ''}`}`;
      return rows.map((row, i) => ({
        clients: `${label}${clients === 1 ? ' (baseline)' : ''}, change ${i + 1}${row.missed ? `, ${row.missed} not within 60 s` : ''} (${row.note})`,
        processes,
        'p50 ms': row.p50,
        'p99 ms': row.p99,
        'answer at the client p50 / p99 ms': row.answered,
        'client processes CPU ms (of the last at)': row.clientCpu,
        'API RSS before → live MiB': i === 0 ? `${rssBefore.toFixed(0)} → ${rssLive.toFixed(0)}` : '',
        'KiB per client': i > 0 || clients === 1 ? '' : (((rssLive - rssBefore) * 1024) / clients).toFixed(0),
      }));
    };
    /** One change, awaited by every client of `workers`; its figures. */
    const fanOutChange = async (
      fan: Member,
      workers: ChildProcess[],
      clients: number,
      liveSse: boolean,
      change: number,
    ) => {
      // every client is in live mode: its request waits in the API (or its stream is open)
      const waiting = await waitForLiveClients(stack.apiUrl, liveSse ? 'shape-sse' : 'shape-poll', clients);
      const tx = `fanout-${change}-${Date.now().toString(36)}`;
      const reports = workers.map(
        (w) =>
          new Promise<FanOutReport>((resolve) =>
            w.once('message', (report: FanOutReport) => resolve(report)),
          ),
      );
      for (const w of workers) w.send({ awaitTransaction: tx } satisfies FanOutMessage);
      await new Promise((r) => setTimeout(r, 200)); // the workers have subscribed
      let notifiedAt = 0;
      const listener = await sql.listen(NOTIFY_CHANNEL, () => {
        notifiedAt ||= Date.now();
      });
      const cpuBefore = stack.cpuMsByProcess();
      const sentAt = Date.now();
      await client.request('POST', `/api/organizations/${fan.org.id}/pages`, {
        token: fan.token,
        body: { title: 'fan-out' },
        headers: { 'x-transaction-id': tx },
      });
      const received = await Promise.all(reports);
      const cpuAfter = stack.cpuMsByProcess();
      await listener.unlisten();
      const afterSend = (times: (number | null)[]) =>
        times
          .filter((t) => t !== null)
          .map((t) => t - sentAt)
          .sort((a, b) => a - b);
      const seenAt = received.flatMap((r) => r.seenAt);
      const delivered = afterSend(seenAt);
      // long-poll: when the answer's headers reached each stream, as its process got to them
      const answered = afterSend(received.flatMap((r) => r.answeredAt));
      const clientCpu = received.map((r) => r.cpuMs.toFixed(0)).join(' / ');
      const notified = notifiedAt ? `NOTIFY after ${notifiedAt - sentAt} ms` : 'NOTIFY not heard';
      return {
        missed: seenAt.length - delivered.length,
        note: `${waiting} waiting; ${notified}; until the last saw it CPU of the API ${cpuAfter.api - cpuBefore.api} ms, of PostgreSQL ${cpuAfter.postgres - cpuBefore.postgres} ms`,
        p50: percentile(delivered, 0.5).toFixed(0),
        p99: percentile(delivered, 0.99).toFixed(0),
        answered: liveSse
          ? ''
          : `${percentile(answered, 0.5).toFixed(0)} / ${percentile(answered, 0.99).toFixed(0)}`,
        clientCpu: `${clientCpu} (${(delivered.at(-1) ?? 0).toFixed(0)})`,
      };
    };
    // the server's side of a fan-out: raw long-polls, each on its own connection, whose
    // responses are only measured (bench/support/raw-get.ts), not parsed
    const fan = await client.newMember();
    const rawUrl = `${stack.apiUrl}/api/organizations/${fan.org.id}/shapes/pages`;
    const rawHeaders = { authorization: `Bearer ${fan.token}` };
    const first = await fetch(`${rawUrl}?offset=-1&log=full`, { headers: rawHeaders });
    await first.arrayBuffer();
    const live = new URLSearchParams({
      cursor: '',
      handle: first.headers.get('electric-handle') ?? '',
      live: 'true',
      log: 'full',
      offset: first.headers.get('electric-offset') ?? '',
    });
    const rawFanOut = async (clients: number, round: string) => {
      const url = rawUrl;
      const headers = rawHeaders;
      let sentAt = 0;
      const answered = Array.from({ length: clients }, () =>
        rawGet(`${url}?${live}`, headers).then(() => Date.now() - sentAt),
      );
      await new Promise((r) => setTimeout(r, 2_000)); // every request is waiting
      // the worker's NOTIFY reaches this listener as it reaches the API: right after the
      // activity commits, so "last response − notified" is the server's own fan-out time
      let notifiedAt = 0;
      const listener = await sql.listen(NOTIFY_CHANNEL, () => {
        notifiedAt ||= Date.now();
      });
      const cpuBefore = stack.apiCpuMs();
      const mainThreadBefore = stack.apiMainThreadCpuMs();
      sentAt = Date.now();
      await client.request('POST', `/api/organizations/${fan.org.id}/pages`, {
        token: fan.token,
        body: { title: 'fan-out' },
        headers: { 'x-transaction-id': `fanout-raw-${Date.now().toString(36)}` },
      });
      const delivered = (await Promise.all(answered)).sort((a, b) => a - b);
      const cpu = stack.apiCpuMs() - cpuBefore;
      const mainThread = stack.apiMainThreadCpuMs() - mainThreadBefore;
      await listener.unlisten();
      // the next round waits at the offset this change moved the log to
      const caughtUp = await fetch(
        `${url}?${new URLSearchParams({ ...Object.fromEntries(live), live: 'false' })}`,
        {
          headers,
        },
      );
      await caughtUp.arrayBuffer();
      live.set('offset', caughtUp.headers.get('electric-offset') ?? '');
      const lastAfterNotify = sentAt + (delivered.at(-1) ?? 0) - notifiedAt;
      return {
        clients: `${clients} raw long-polls, round ${round} (server side; last response ${lastAfterNotify} ms after the NOTIFY; API CPU ${cpu} ms, ${((cpu * 1000) / clients).toFixed(0)} µs per response, of its main thread ${((mainThread * 1000) / clients).toFixed(0)} µs)`,
        processes: 1,
        'p50 ms': percentile(delivered, 0.5).toFixed(0),
        'p99 ms': percentile(delivered, 0.99).toFixed(0),
        'answer at the client p50 / p99 ms': '',
        'client processes CPU ms (of the last at)': '',
        'API RSS before → live MiB': '',
        'KiB per client': '',
      };
    };
    const fanOutRows = [...(await fanOut(1, 1, false, 1))];
    for (let round = 1; round <= RAW_FANOUT_WARMUP_ROUNDS; round++) {
      fanOutRows.push(await rawFanOut(FANOUT_CLIENTS, `${round} of the warm-up`));
    }
    for (let round = 1; round <= RAW_FANOUT_ROUNDS; round++) {
      fanOutRows.push(await rawFanOut(FANOUT_CLIENTS, String(round)));
    }
    if (!withClients) {
      printTable(fanOutRows);
      return;
    }
    for (const processes of FANOUT_PROCESSES) {
      fanOutRows.push(...(await fanOut(FANOUT_CLIENTS, processes, false, FANOUT_CHANGES)));
    }
    if (FANOUT_FETCH === 'global' && process.env.BENCH_FANOUT_FETCH === undefined) {
      // beside it, the same clients on undici's request (bench/support/lean-fetch.ts)
      fanOutRows.push(
        ...(await fanOut(FANOUT_CLIENTS, FANOUT_PROCESSES[0] ?? 2, false, FANOUT_CHANGES, 'undici')),
      );
    }
    fanOutRows.push(...(await fanOut(FANOUT_CLIENTS, FANOUT_PROCESSES[0] ?? 2, true, FANOUT_CHANGES)));
    console.log(
      `\nfan-out: changes one after another (write sent → each client sees it), official clients in ${FANOUT_PROCESSES.join(' / ')} processes`,
    );
    printTable(fanOutRows);
  }
}

const wall = (t: number) => performance.timeOrigin + t;

/**
 * `BENCH_TRACE=1`: each write's phases on one wall clock, split where a process hands over,
 * and what each process did meanwhile (stalls of its event loop, garbage collection), for the
 * writes in the tail. The commit time is PostgreSQL's (the activity's, from the WAL).
 */
function printWriteTimelines(
  writes: { tx: string; sent: number; responded?: number; confirmed?: number }[],
  traces: ProcessTrace[],
  logged: (tx: string) => { committed: number; notified?: number } | undefined,
) {
  const api = traces.find((t) => t.role === 'api');
  const received = new Map(api?.requests.map((r) => [r.tx, r]));
  const rows = writes.flatMap((w) => {
    const at = logged(w.tx);
    const request = received.get(w.tx);
    if (!at || !request?.finished || w.responded === undefined || w.confirmed === undefined) return [];
    const sent = wall(w.sent);
    return [
      {
        sent,
        total: w.confirmed - w.sent,
        'bench → API': request.received - sent,
        'API → commit': at.committed - request.received,
        'commit → response written': request.finished - at.committed,
        'response written → bench has it': wall(w.responded) - request.finished,
        'commit → NOTIFY': at.notified === undefined ? Number.NaN : wall(at.notified) - at.committed,
        'NOTIFY → matchStream': at.notified === undefined ? Number.NaN : w.confirmed - at.notified,
      },
    ];
  });
  rows.sort((a, b) => a.total - b.total);
  const phases = Object.keys(rows[0] ?? {}).filter(
    (k) => k !== 'sent' && k !== 'total',
  ) as (keyof (typeof rows)[number])[];
  const median = (values: number[]) =>
    percentile(
      [...values].sort((a, b) => a - b),
      0.5,
    );
  const tail = rows.slice(Math.floor(rows.length * 0.98));
  console.log(`\nwhere a confirmation's time goes (BENCH_TRACE=1; ${rows.length} writes traced)`);
  printTable(
    phases.map((phase) => ({
      phase,
      'p50 of all ms': median(rows.map((r) => r[phase])).toFixed(1),
      'p99 of all ms': percentile(
        rows.map((r) => r[phase]).sort((a, b) => a - b),
        0.99,
      ).toFixed(1),
      'median in the slowest 2% ms': median(tail.map((r) => r[phase])).toFixed(1),
    })),
  );
  for (const trace of traces) {
    const stalled = trace.stalls.reduce((sum, s) => sum + s.ms, 0);
    const stalledCpu = trace.stalls.reduce((sum, s) => sum + s.cpuMs, 0);
    const worst = Math.max(0, ...trace.stalls.map((s) => s.ms));
    const gc = trace.gcs.reduce((sum, g) => sum + g.ms, 0);
    const longGc = trace.gcs.filter((g) => g.ms > 10).length;
    console.log(
      `  ${trace.role}: CPU ${trace.cpuMs.toFixed(0)} ms; event loop delay p50 ${trace.loopDelay.p50.toFixed(1)} / p99 ${trace.loopDelay.p99.toFixed(1)} / max ${trace.loopDelay.max.toFixed(1)} ms; ${trace.stalls.length} stalls > 5 ms (${stalled.toFixed(0)} ms, its own CPU ${stalledCpu.toFixed(0)} ms of them; worst ${worst.toFixed(0)}); GC ${trace.gcs.length} pauses, ${gc.toFixed(0)} ms, ${longGc} over 10 ms`,
    );
  }
  console.log('  the slowest writes (ms after sent), and what overlapped them:');
  for (const row of rows.slice(-5).reverse()) {
    const end = row.sent + row.total;
    const during = traces.flatMap((t) => [
      ...t.stalls
        .filter((s) => s.at < end && s.at + s.ms > row.sent)
        .map(
          (s) =>
            `${t.role} stall ${s.ms.toFixed(0)} (CPU ${s.cpuMs.toFixed(0)}) at +${(s.at - row.sent).toFixed(0)}`,
        ),
      ...t.gcs
        .filter((g) => g.ms > 2 && g.at < end && g.at + g.ms > row.sent)
        .map((g) => `${t.role} ${g.kind} GC ${g.ms.toFixed(0)} at +${(g.at - row.sent).toFixed(0)}`),
    ]);
    const parts = phases.map((phase) => `${phase} ${row[phase].toFixed(1)}`).join(', ');
    console.log(`    ${row.total.toFixed(0)}: ${parts}${during.length ? `; ${during.join(', ')}` : ''}`);
  }
}

interface WalStats {
  walRecords: number;
  walWrite: number;
  walSync: number;
  walSyncMs: number;
  checkpoints: number;
}

async function walStats(sql: postgres.Sql): Promise<WalStats> {
  const [row] = await sql<WalStats[]>`
    select w.wal_records::float8 as "walRecords", w.wal_write::float8 as "walWrite",
           w.wal_sync::float8 as "walSync", w.wal_sync_time::float8 as "walSyncMs",
           (c.num_timed + c.num_requested)::float8 as checkpoints
    from pg_stat_wal w, pg_stat_checkpointer c`;
  if (!row) throw new Error('pg_stat_wal returned no row');
  return row;
}

function printWalDelta(before: WalStats, after: WalStats) {
  const delta = (key: keyof WalStats) => after[key] - before[key];
  console.log(
    `  PostgreSQL meanwhile: ${delta('walRecords')} WAL records, ${delta('walWrite')} WAL writes, ${delta('walSync')} WAL syncs (${delta('walSyncMs').toFixed(0)} ms, when track_wal_io_timing is on), ${delta('checkpoints')} checkpoints`,
  );
}

/**
 * A tracked create, sent again with the same transaction id when the connection drops (a
 * keep-alive socket the loaded server closed): applied once whatever happens, as a client would.
 */
async function postOnce(sender: Pool, path: string, token: string, transactionId: string) {
  for (let attempt = 1; ; attempt++) {
    let answer: { status: number; body: string };
    try {
      const res = await sender.request({
        method: 'POST',
        path,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'x-transaction-id': transactionId,
        },
        body: JSON.stringify({ title: transactionId }),
      });
      answer = { status: res.statusCode, body: await res.body.text() };
    } catch (err) {
      if (attempt >= 3) throw err;
      continue;
    }
    if (answer.status !== 201) throw new Error(`write answered ${answer.status}: ${answer.body}`);
    return;
  }
}

/** Waits (up to 30 s) until the API counts `clients` live shape clients of `kind`; returns how many it counted. */
async function waitForLiveClients(apiUrl: string, kind: 'shape-poll' | 'shape-sse', clients: number) {
  const deadline = Date.now() + 30_000;
  let open = 0;
  while (Date.now() < deadline) {
    const metrics = await (await fetch(`${apiUrl}/api/metrics`)).text();
    open = Number(new RegExp(`^stream_clients\\{kind="${kind}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    if (open >= clients) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 300)); // the last ones' first reads are done
  return open;
}

async function waitForCdc(client: ApiClient): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const health = await client.request('GET', '/api/health');
    if (health.body?.cdc?.status === 'streaming') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the CDC worker did not start streaming within 30 s');
}

async function waitForActivities(sql: postgres.Sql, organizationId: string, count: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const [row] = await sql<
      { n: number }[]
    >`select count(*)::int as n from activities where organization_id = ${organizationId}`;
    if ((row?.n ?? 0) >= count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the CDC worker did not catch up within 120 s');
}

/**
 * A benchmark stack: durable embedded PostgreSQL (default settings; `BENCH_PG_FAST=1`: fsync off), the API in a child process
 * (so the load generator does not share its event loop) and, on request, the CDC worker in
 * another child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../../db/src/embedded-postgres.ts';
import { runMigrations } from '../../db/src/migrations.ts';
import type { ProcessTrace } from './process-trace.ts';

export interface BenchStack {
  cluster: EmbeddedCluster;
  apiUrl: string;
  /** Resident memory of the API process, in MiB. */
  apiRssMiB(): number;
  /** CPU time (user + system) the API process has spent so far, in ms (10 ms resolution). */
  apiCpuMs(): number;
  /** CPU time of the API's main thread (its JavaScript; no GC helpers, no I/O threads) so far, in ms, to the nanosecond. */
  apiMainThreadCpuMs(): number;
  /** CPU time each side has spent so far, in ms: the API, the worker, every PostgreSQL process. */
  cpuMsByProcess(): { api: number; cdc: number; postgres: number };
  /** With `BENCH_TRACE=1`: the API's and the worker's timelines so far (process-trace.ts). */
  traces(): Promise<ProcessTrace[]>;
  stop(): Promise<void>;
}

const TRACE_DIR = process.env.BENCH_TRACE === '1' ? mkdtempSync(join(tmpdir(), 'bench-trace-')) : undefined;
const TRACE_MODULE = fileURLToPath(new URL('./process-trace.ts', import.meta.url));

function spawnTs(
  entry: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
  traceRole?: string,
): ChildProcess {
  const traced = TRACE_DIR && traceRole ? ['--import', TRACE_MODULE] : [];
  return spawn(process.execPath, [...nodeFlags, '--import', 'tsx', ...traced, entry], {
    env: {
      ...process.env,
      ...env,
      ...(TRACE_DIR && traceRole ? { BENCH_TRACE_DIR: TRACE_DIR, BENCH_TRACE_ROLE: traceRole } : {}),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

function rssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
}

/** utime + stime of /proc/<pid>/stat, in clock ticks of 10 ms (Linux's USER_HZ). */
function cpuMs(pid: number | undefined): number {
  // the fields after the command name, which is in parentheses and may hold spaces
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The time on a CPU of a process's main thread (/proc/<pid>/schedstat, in ns), in ms. */
function mainThreadCpuMs(pid: number | undefined): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** The postmaster (first line of its pid file) and every process it started: backends, walsenders, WAL writer… */
function postgresCpuMs(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      if (Number(entry) !== postmaster && Number(fields[1]) !== postmaster) continue;
      total += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

export async function startBenchStack(
  options: { cdc?: boolean; env?: Record<string, string> } = {},
): Promise<BenchStack> {
  // BENCH_PG_FAST=1: the tests' PostgreSQL (fsync and synchronous commit off), which takes the
  // disk out of a figure, e.g. the stream's share of a confirmation on a machine whose disk is shared
  const cluster = await startEmbeddedPostgres({ fast: process.env.BENCH_PG_FAST === '1' });
  await runMigrations(cluster.url);
  const env = { DATABASE_URL: cluster.url, LOG_LEVEL: 'warn', ...options.env };
  // BENCH_API_PROFILE=<dir>: a CPU profile of the API process, written there when it stops,
  // sampled every BENCH_API_PROFILE_INTERVAL µs (Node's default: 1,000)
  const profileDir = process.env.BENCH_API_PROFILE;
  const interval = process.env.BENCH_API_PROFILE_INTERVAL;
  const api = spawnTs(
    fileURLToPath(new URL('./api-process.ts', import.meta.url)),
    env,
    profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          ...(interval ? [`--cpu-prof-interval=${interval}`] : []),
        ]
      : [],
    'api',
  );
  const apiUrl = await new Promise<string>((resolve, reject) => {
    api.once('exit', (code) => reject(new Error(`API process exited (${code})`)));
    createInterface({ input: api.stdout! }).once('line', (line) => resolve(JSON.parse(line).url));
  });
  const cdc = options.cdc
    ? spawnTs(fileURLToPath(new URL('../../cdc/src/main.ts', import.meta.url)), env, [], 'cdc')
    : undefined;
  return {
    cluster,
    apiUrl,
    apiRssMiB: () => rssMiB(api.pid),
    apiCpuMs: () => cpuMs(api.pid),
    apiMainThreadCpuMs: () => mainThreadCpuMs(api.pid),
    cpuMsByProcess: () => ({
      api: cpuMs(api.pid),
      cdc: cdc ? cpuMs(cdc.pid) : 0,
      postgres: postgresCpuMs(cluster.dataDir),
    }),
    async traces() {
      if (!TRACE_DIR) return [];
      const children = [api, cdc].filter((child) => child !== undefined);
      for (const file of readdirSync(TRACE_DIR)) rmSync(join(TRACE_DIR, file));
      for (const child of children) child.kill('SIGUSR2');
      const deadline = Date.now() + 10_000;
      while (readdirSync(TRACE_DIR).length < children.length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 100)); // the last file is written whole
      return readdirSync(TRACE_DIR).map((file) => JSON.parse(readFileSync(join(TRACE_DIR, file), 'utf8')));
    },
    async stop() {
      await Promise.all([stopChild(api), cdc ? stopChild(cdc) : undefined]);
      await cluster.destroy();
      if (TRACE_DIR) rmSync(TRACE_DIR, { recursive: true, force: true });
    },
  };
}

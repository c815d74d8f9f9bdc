/**
 * A benchmark stack: durable embedded PostgreSQL (default settings; `BENCH_PG_FAST=1`: fsync off), the API in a child process
 * (so the load generator does not share its event loop) and, on request, the CDC worker in
 * another child process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../../db/src/embedded-postgres.ts';
import { runMigrations } from '../../db/src/migrations.ts';

export interface BenchStack {
  cluster: EmbeddedCluster;
  apiUrl: string;
  /** Resident memory of the API process, in MiB. */
  apiRssMiB(): number;
  /** CPU time (user + system) the API process has spent so far, in ms (10 ms resolution). */
  apiCpuMs(): number;
  stop(): Promise<void>;
}

function spawnTs(entry: string, env: Record<string, string>, nodeFlags: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeFlags, '--import', 'tsx', entry], {
    env: { ...process.env, ...env },
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

export async function startBenchStack(
  options: { cdc?: boolean; env?: Record<string, string> } = {},
): Promise<BenchStack> {
  // BENCH_PG_FAST=1: the tests' PostgreSQL (fsync and synchronous commit off), which takes the
  // disk out of a figure, e.g. the stream's share of a confirmation on a machine whose disk is shared
  const cluster = await startEmbeddedPostgres({ fast: process.env.BENCH_PG_FAST === '1' });
  await runMigrations(cluster.url);
  const env = { DATABASE_URL: cluster.url, LOG_LEVEL: 'warn', ...options.env };
  // BENCH_API_PROFILE=<dir>: a CPU profile of the API process, written there when it stops
  const profileDir = process.env.BENCH_API_PROFILE;
  const api = spawnTs(
    fileURLToPath(new URL('./api-process.ts', import.meta.url)),
    env,
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  );
  const apiUrl = await new Promise<string>((resolve, reject) => {
    api.once('exit', (code) => reject(new Error(`API process exited (${code})`)));
    createInterface({ input: api.stdout! }).once('line', (line) => resolve(JSON.parse(line).url));
  });
  const cdc = options.cdc
    ? spawnTs(fileURLToPath(new URL('../../cdc/src/main.ts', import.meta.url)), env)
    : undefined;
  return {
    cluster,
    apiUrl,
    apiRssMiB: () => rssMiB(api.pid),
    apiCpuMs: () => cpuMs(api.pid),
    async stop() {
      await Promise.all([stopChild(api), cdc ? stopChild(cdc) : undefined]);
      await cluster.destroy();
    },
  };
}

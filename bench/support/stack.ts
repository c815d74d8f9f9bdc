/** A benchmark stack: durable embedded PostgreSQL (default settings) and the API in a child process. */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runMigrations } from '../../backend/src/db/client.ts';
import { type EmbeddedCluster, startEmbeddedPostgres } from '../../backend/src/db/embedded-postgres.ts';

export interface BenchStack {
  cluster: EmbeddedCluster;
  apiUrl: string;
  stop(): Promise<void>;
}

export async function startBenchStack(): Promise<BenchStack> {
  const cluster = await startEmbeddedPostgres();
  await runMigrations(cluster.url);
  const entry = fileURLToPath(new URL('./api-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { ...process.env, DATABASE_URL: cluster.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const apiUrl = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`API process exited (${code})`)));
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line).url));
  });
  return {
    cluster,
    apiUrl,
    async stop() {
      child.removeAllListeners('exit');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      await cluster.destroy();
    },
  };
}

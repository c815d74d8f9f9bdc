/** The API in a child process on a fixed port, so a test can kill it with SIGKILL and restart it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../../backend/src/main.ts', import.meta.url));

export interface ApiProcess {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
}

export function apiProcess(databaseUrl: string, port: number): ApiProcess {
  let child: ChildProcess | undefined;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    async start() {
      child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const orphan = child;
      process.once('exit', () => orphan.kill('SIGKILL'));
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        try {
          if ((await fetch(`${url}/api/health`)).status < 500) return;
        } catch {
          // not listening yet
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('API process did not start');
    },
    async kill() {
      const running = child;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
}

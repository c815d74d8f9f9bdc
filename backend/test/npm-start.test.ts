/**
 * `npm start` and the deployment entry as a user runs them: child processes on a throwaway
 * DATA_DIR, each in its own process group so that "no process left behind" can be checked.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const STARTUP_MS = 90_000;

interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string>): Started {
  const child = spawn('npm', args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => output, exited };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

/** Pids of the live processes in a process group. */
async function processGroup(pgid: number): Promise<{ pid: number; cmdline: string }[]> {
  const members = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // state is the 3rd field, pgrp the 5th; a zombie is already gone
    if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    members.push({ pid: Number(entry), cmdline: cmdline.replaceAll('\0', ' ') });
  }
  return members;
}

/** Ends a process group this test started and waits until it is empty. */
async function stopGroup(pgid: number | undefined) {
  if (!pgid) return;
  try {
    process.kill(-pgid, 'SIGINT');
  } catch {
    return;
  }
  await until(async () => (await processGroup(pgid)).length === 0, 30_000, `group ${pgid} ending`).catch(() =>
    process.kill(-pgid, 'SIGKILL'),
  );
}

let dir: string;
let first: Started;
let firstPort: number;
const groups: number[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'npm-start-'));
  firstPort = await freePort();
  first = run(['start'], { PORT: String(firstPort), DATA_DIR: join(dir, 'data') });
  groups.push(first.child.pid ?? 0);
  await until(() => first.output().includes('Ready in'), STARTUP_MS, `npm start\n${first.output()}`);
}, STARTUP_MS + 10_000);

afterAll(async () => {
  for (const pgid of groups) await stopGroup(pgid);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const health = (port: number) => fetch(`http://127.0.0.1:${port}/api/health`).then((res) => res.status);

describe('npm start', () => {
  it('listens on 127.0.0.1 only by default', async () => {
    expect(await health(firstPort)).toBe(200);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!external) return;
    await expect(fetch(`http://${external}:${firstPort}/api/health`)).rejects.toThrow();
  });

  it('refuses a second start on the same DATA_DIR with one clear line, and the first keeps running', async () => {
    const second = run(['start'], { PORT: String(await freePort()), DATA_DIR: join(dir, 'data') });
    groups.push(second.child.pid ?? 0);
    expect(await second.exited).not.toBe(0);
    expect(second.output()).toMatch(/✖ .*data is in use by another running process \(pid \d+\)/);
    expect(second.output()).not.toMatch(/\n\s+at /); // no stack trace
    expect(await processGroup(second.child.pid ?? 0)).toEqual([]);
    // the first one's PostgreSQL was left alone: it still answers, also after a moment
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await health(firstPort)).toBe(200);
    const signIn = await fetch(`http://127.0.0.1:${firstPort}/api/auth/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'demo@example.com', password: 'demo-password' }),
    });
    expect(signIn.status).toBe(200);
  });

  it('ends with one clear line and no process left behind when PORT is busy', async () => {
    const squatter: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
    try {
      const busy = run(['start'], { PORT: String(port), DATA_DIR: join(dir, 'busy') });
      groups.push(busy.child.pid ?? 0);
      expect(await busy.exited).toBe(1);
      const errors = busy
        .output()
        .split('\n')
        .filter((line) => line.startsWith('✖'));
      expect(errors).toEqual([
        `✖ npm start failed: port ${port} on 127.0.0.1 is in use; stop what uses it or set PORT`,
      ]);
      expect(busy.output()).not.toMatch(/EADDRINUSE|\n\s+at /);
      // nothing of it outlives it: no worker, no PostgreSQL
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await processGroup(busy.child.pid ?? 0)).toEqual([]);
    } finally {
      squatter.close();
    }
  });

  it('stops the CDC worker when the process that started it dies', async () => {
    const pgid = first.child.pid ?? 0;
    const owner = Number.parseInt(await readFile(join(dir, 'data', 'owner.pid'), 'utf8'), 10);
    const worker = (await processGroup(pgid)).find((p) => p.cmdline.includes('cdc/src/main.ts'));
    expect(worker, JSON.stringify(await processGroup(pgid))).toBeDefined();
    process.kill(owner, 'SIGKILL');
    await until(
      async () => !(await processGroup(pgid)).some((p) => p.pid === worker?.pid),
      15_000,
      'the CDC worker exiting',
    );
  });
});

describe('the deployment entry (npm run start -w backend)', () => {
  it('reports a failure to start as one readable line in development and as JSON in production', async () => {
    const unreachable = `postgres://nobody:secret@127.0.0.1:${await freePort()}/none`;
    for (const [nodeEnv, line] of [
      ['development', /^\[[\d:.]+\] FATAL: the API could not start: .*ECONNREFUSED/],
      ['production', /^\{"level":60,.*"msg":"the API could not start"\}$/],
    ] as const) {
      const api = run(['run', 'start', '-w', 'backend', '--silent'], {
        PORT: String(await freePort()),
        DATABASE_URL: unreachable,
        NODE_ENV: nodeEnv,
      });
      groups.push(api.child.pid ?? 0);
      expect(await api.exited).toBe(1);
      const lines = api.output().trim().split('\n');
      expect(lines, api.output()).toHaveLength(1);
      expect(lines[0]).toMatch(line);
    }
  });

  it(
    'creates no demo account and listens on 127.0.0.1 by default',
    async () => {
      const database = await startTestDatabase();
      const port = await freePort();
      const api = run(['run', 'start', '-w', 'backend'], { PORT: String(port), DATABASE_URL: database.url });
      groups.push(api.child.pid ?? 0);
      try {
        await until(async () => (await health(port).catch(() => 0)) === 200, STARTUP_MS, 'the API');
        const signIn = await fetch(`http://127.0.0.1:${port}/api/auth/sign-in`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'demo@example.com', password: 'demo-password' }),
        });
        expect(signIn.status).toBe(401);
      } finally {
        await stopGroup(api.child.pid);
        await database.destroy();
      }
    },
    STARTUP_MS + 30_000,
  );
});

/**
 * Guarantee 3 from the very first write: the migration step creates the publication and the
 * slot, so PostgreSQL keeps every tracked change's WAL however late the worker starts.
 *   - `npm start`, then a write as soon as `/api/health` answers → that write gets its activity;
 *   - the API alone for 30 s, then the worker → every write of that gap has exactly one activity.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient, type Member } from '@sync/backend/api-client';
import { startApiServer } from '@sync/backend/server';
import { readCdcStatus } from '@sync/db/cdc-status';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { expect, it } from 'vitest';
import { startCdcWorker } from '../src/worker.ts';
import { exited, testLogger, waitFor } from './support/tracked-writes.ts';

const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));
const GAP_MS = 30_000;

let sequence = 0;
const transactionId = () => `tx-${Date.now().toString(36)}-${(++sequence).toString(36).padStart(5, '0')}`;

async function createPage(client: ApiClient, member: Member, tx: string): Promise<void> {
  const res = await client.request('POST', `/api/organizations/${member.org.slug}/pages`, {
    token: member.token,
    body: { title: tx },
    headers: { 'x-transaction-id': tx, 'x-client-id': 'client_first_write' },
  });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

it('records the first write made as soon as `npm start` answers /api/health', {
  timeout: 120_000,
}, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'sync-first-write-'));
  const port = await freePort();
  const start: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: REPOSITORY,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  try {
    const client = new ApiClient(`http://127.0.0.1:${port}`);
    await waitFor(async () => (await client.request('GET', '/api/health')).status === 200, {
      what: '/api/health',
      timeoutMs: 60_000,
    });
    const member = await client.newMember();
    const tx = transactionId();
    await createPage(client, member, tx);
    const recorded = await waitFor(
      async () => {
        const res = await client.request('GET', `/api/organizations/${member.org.slug}/transactions/${tx}`, {
          token: member.token,
        });
        return res.status === 200 ? res.body : null;
      },
      { what: `the activity of ${tx}`, timeoutMs: 30_000 },
    );
    expect(recorded).toMatchObject({ transactionId: tx, status: 'applied', activity: { action: 'create' } });
  } finally {
    if (start.pid) process.kill(-start.pid, 'SIGTERM');
    await exited(start);
    await rm(dataDir, { recursive: true, force: true });
  }
});

it(`gives every write exactly one activity when the worker starts ${GAP_MS / 1000} s after the API`, {
  timeout: GAP_MS + 90_000,
}, async () => {
  const cluster = await startTestDatabase();
  const sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  const api = await startApiServer({ databaseUrl: cluster.url, logger: testLogger });
  let worker: ReturnType<typeof startCdcWorker> | undefined;
  try {
    const client = new ApiClient(api.url);
    const health = await client.request('GET', '/api/health');
    expect(health.body.cdc.status).toBe('starting');
    const member = await client.newMember();
    const written: string[] = [];
    const until = Date.now() + GAP_MS;
    while (Date.now() < until) {
      const tx = transactionId();
      await createPage(client, member, tx);
      written.push(tx);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await readCdcStatus(sql)).status).toBe('starting');

    worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger });
    await worker.streaming();
    await waitFor(
      async () => {
        const [row] = await sql<{ count: number }[]>`select count(*)::int as count from activities`;
        return (row?.count ?? 0) >= written.length;
      },
      { what: `${written.length} activities`, timeoutMs: 30_000 },
    );
    const rows = await sql<{ tx: string; count: number }[]>`
      select transaction_id as tx, count(*)::int as count from activities group by 1`;
    expect(rows.every((r) => r.count === 1)).toBe(true);
    expect(rows.map((r) => r.tx).sort()).toEqual([...written].sort());
    expect((await client.request('GET', '/api/health')).body.cdc.status).toBe('streaming');
  } finally {
    await worker?.stop();
    await api.close();
    await sql.end();
    await cluster.destroy();
  }
});

/**
 * The sink commits asynchronously; exactly-once must survive PostgreSQL itself dying before those
 * commits are flushed. PostgreSQL runs with its durable settings and its WAL writer asleep for
 * 10 s (its maximum), so nothing but a synchronous commit flushes the worker's batches. The
 * worker's last batches are then committed (their activities readable) but not flushed, and the
 * slot must not have been told their source transactions are done. PostgreSQL is killed -9
 * right then; after crash recovery a worker must end with exactly one activity per change.
 */
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import {
  createPage,
  liveCounts,
  seedTenants,
  storedCounts,
  testLogger,
  waitFor,
} from './support/tracked-writes.ts';
import { holdWalFlushes, walFlushAndSlot, walInsertPosition } from './support/wal.ts';

const CHANGES = 20;

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let worker: CdcWorker | undefined;

beforeAll(async () => {
  cluster = await startTestDatabase({ fast: false });
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await holdWalFlushes(sql);
  await seedTenants(sql, ['org_a', 'org_b']);
});

afterAll(async () => {
  await worker?.stop();
  await sql?.end({ timeout: 1 });
  await cluster?.destroy();
});

async function activityTransactionIds(db: postgres.Sql): Promise<string[]> {
  const rows = await db<{ tx: string }[]>`select transaction_id as tx from activities order by lsn, position`;
  return rows.map((r) => r.tx);
}

it('keeps one activity per change when PostgreSQL is killed -9 before the batches are flushed', {
  timeout: 90_000,
}, async () => {
  worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger });
  await worker.streaming();
  // A first change comes through and is acknowledged: its batch was flushed by the write below.
  await createPage(sql, { id: 'page_first', org: 'org_a', tx: 'tx_first' });
  await waitFor(async () => (await activityTransactionIds(sql)).length === 1, { what: 'the first activity' });

  const expected = ['tx_first'];
  // Each round ends with its last batches committed; a round in which the WAL writer happened
  // to flush them anyway proves nothing, and the next round tries again.
  let window: { flushed: bigint; confirmed: bigint; beforeLast: bigint } | null = null;
  for (let round = 0; round < 5 && window === null; round++) {
    let beforeLast = 0n;
    for (let i = 0; i < CHANGES; i++) {
      const tx = `tx_${round}_${i}`;
      if (i === CHANGES - 1) {
        // a running-transactions record lets the slot's restart_lsn move, which writes the
        // slot's confirmed position to disk as soon as the worker confirms past it
        await sql`select pg_log_standby_snapshot()`;
        beforeLast = await walInsertPosition(sql);
      }
      await createPage(sql, { id: `page_${round}_${i}`, org: i % 2 ? 'org_a' : 'org_b', tx });
      expected.push(tx);
    }
    await waitFor(async () => (await activityTransactionIds(sql)).length === expected.length, {
      what: 'every activity committed',
    });
    const committed = await walInsertPosition(sql);
    // Give a wrongly early acknowledgement time to reach the server.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { flushed, confirmed } = await walFlushAndSlot(sql);
    if (flushed < committed) window = { flushed, confirmed, beforeLast };
  }
  expect(window, 'a round whose last batches are committed but not flushed').not.toBeNull();
  expect(
    window?.confirmed,
    'the slot is not told the last change is done before its activity is flushed',
  ).toBeLessThanOrEqual(window?.beforeLast ?? 0n);

  await cluster.crash();
  await worker.stop();
  await cluster.start();
  await sql.end({ timeout: 1 });
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  const survived = await activityTransactionIds(sql);
  expect(survived.length, 'the crash took the unflushed batches with it').toBeLessThan(expected.length);

  worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger });
  await waitFor(async () => (await activityTransactionIds(sql)).length >= expected.length, {
    what: 'the lost activities written again',
    timeoutMs: 30_000,
  });
  // Nothing more arrives later (a duplicate would be refused by the key, but look anyway).
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(await activityTransactionIds(sql)).toEqual(expected);
  expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
});

/**
 * A database restart under a running worker: the replication connection and the writer pool
 * die; the worker reconnects by itself (backoff) and resumes from the acknowledged position.
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
  softDeletePage,
  storedCounts,
  testLogger,
  waitFor,
} from './support/tracked-writes.ts';

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let worker: CdcWorker;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 4, connect_timeout: 2 });
  await seedTenants(sql, ['org_a', 'org_b']);
  worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger, reconnectMaxMs: 1_000 });
  await worker.streaming();
});

afterAll(async () => {
  await worker?.stop();
  await sql?.end({ timeout: 1 });
  await cluster?.destroy();
});

/** Every committed change's transaction id, read back from the rows (a commit cut by the restart may or may not have happened). */
async function committedTransactionIds(): Promise<string[]> {
  const rows = await sql<{ tx: string }[]>`
    select transactions ->> 'insert' as tx from pages
    union all select transactions ->> 'delete' from pages where deleted_at is not null`;
  return rows.map((r) => r.tx).sort();
}

it('reconnects by itself after a database restart and loses nothing', async () => {
  let writing = true;
  let n = 0;
  const writer = (async () => {
    while (writing) {
      const i = n++;
      try {
        await createPage(sql, { id: `page_${i}`, org: i % 2 ? 'org_a' : 'org_b', tx: `tx_insert_${i}` });
        if (i % 5 === 0) await softDeletePage(sql, { id: `page_${i}`, tx: `tx_delete_${i}` });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50)); // the database is down
      }
    }
  })();

  await waitFor(async () => n > 100, { what: 'writes before the restart' });
  await cluster.stop();
  await new Promise((resolve) => setTimeout(resolve, 700));
  await cluster.start();
  const afterRestart = n;
  await waitFor(async () => n > afterRestart + 100, { what: 'writes after the restart' });
  writing = false;
  await writer;

  await waitFor(async () => worker.state() === 'streaming', { what: 'the worker to stream again' });
  const expected = await committedTransactionIds();
  let activities: string[] = [];
  await waitFor(
    async () => {
      const rows = await sql<{ tx: string }[]>`select transaction_id as tx from activities`;
      activities = rows.map((r) => r.tx).sort();
      return activities.length >= expected.length;
    },
    { what: 'activities for every committed change', timeoutMs: 30_000 },
  );
  expect(activities).toEqual(expected);
  expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
});

/**
 * Database restarts under a running worker: the replication connection and the writer pool
 * die; the worker reconnects by itself (backoff) and resumes from the acknowledged position.
 *
 * Several restarts, each at another moment after the worker streams again, while writes go on:
 * one restart lands between batches, another in the middle of a batch's COPY or its commit.
 * A batch whose connection died there once went on, after the pool had reconnected, on the new
 * connection outside its transaction: cdc_state moved past its changes without their rows, and
 * those activities were lost for good (see connection-loss.test.ts for the driver's side).
 */
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import { sleep } from '@sync/db/timers';
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

/** When each restart comes after the worker streams again (ms), and how long the server is down. */
const RESTARTS = [
  { after: 0, down: 700 },
  { after: 60, down: 300 },
  { after: 150, down: 500 },
  { after: 250, down: 300 },
  { after: 400, down: 600 },
  { after: 30, down: 400 },
];

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

it('reconnects by itself after each database restart and loses nothing', { timeout: 180_000 }, async () => {
  let n = 0;
  for (const [round, restart] of RESTARTS.entries()) {
    await waitFor(async () => worker.state() === 'streaming', {
      what: `the worker to stream (round ${round})`,
    });
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const i = n++;
        try {
          await createPage(sql, { id: `page_${i}`, org: i % 2 ? 'org_a' : 'org_b', tx: `tx_insert_${i}` });
          if (i % 5 === 0) await softDeletePage(sql, { id: `page_${i}`, tx: `tx_delete_${i}` });
        } catch {
          await sleep(50); // the database is down
        }
      }
    })();

    await sleep(restart.after);
    await cluster.stop();
    await sleep(restart.down);
    await cluster.start();
    const afterRestart = n;
    await waitFor(async () => n > afterRestart + 50, { what: `writes after restart ${round}` });
    writing = false;
    await writer;

    await waitFor(async () => worker.state() === 'streaming', {
      what: `the worker to stream again (round ${round})`,
    });
    const expected = await committedTransactionIds();
    let activities: string[] = [];
    await waitFor(
      async () => {
        const rows = await sql<{ tx: string }[]>`select transaction_id as tx from activities`;
        activities = rows.map((r) => r.tx).sort();
        return activities.length >= expected.length;
      },
      { what: `activities for every committed change (round ${round})`, timeoutMs: 30_000 },
    ).catch(() => {});
    expect(activities, `round ${round}`).toEqual(expected);
    expect(await storedCounts(sql), `round ${round}`).toEqual(await liveCounts(sql));
  }
});

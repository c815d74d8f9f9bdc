/**
 * While a committed batch waits for its WAL flush, the worker is not idle: a keepalive that
 * arrives then must not be acknowledged either. A keepalive carries the position the walsender
 * has sent up to, which lies past the source transactions of that batch; acknowledging it would
 * tell the slot they are done while a crash could still take their activities away.
 *
 * And a server shut down while a batch waits: it refuses the worker's flush probe from then on,
 * while its walsender waits for the worker to confirm the last WAL before it exits. The worker
 * must end its replication connection, or the shutdown never finishes.
 *
 * PostgreSQL runs with its durable settings and its WAL writer asleep for 10 s, so a batch's
 * asynchronous commit stays unflushed until something commits synchronously. The worker asks
 * for a keepalive every 50 ms, so a few of them arrive while the batch waits.
 */
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import { sleep, withTimeout } from '@sync/db/timers';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import { activityCount, createPage, seedTenants, testLogger, waitFor } from './support/tracked-writes.ts';
import { holdWalFlushes, walFlushAndSlot, walInsertPosition } from './support/wal.ts';

const KEEPALIVE_INTERVAL_MS = 50;

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let worker: CdcWorker | undefined;

beforeAll(async () => {
  cluster = await startTestDatabase({ fast: false });
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await holdWalFlushes(sql);
  await seedTenants(sql, ['org_a']);
});

afterAll(async () => {
  await worker?.stop();
  await sql?.end({ timeout: 1 });
  await cluster?.destroy();
});

it('does not acknowledge a keepalive while a committed batch waits for its WAL flush', {
  timeout: 60_000,
}, async () => {
  worker = startCdcWorker({
    databaseUrl: cluster.url,
    logger: testLogger,
    statusIntervalMs: KEEPALIVE_INTERVAL_MS,
  });
  await worker.streaming();
  // The worker records that it streams with a synchronous commit: let that flush come first.
  await waitFor(
    async () => {
      const [state] = await sql`select 1 from cdc_state where streamed_at is not null`;
      return state !== undefined;
    },
    { what: 'the worker recorded as streaming' },
  );

  // Each round writes one change and waits until its batch is committed. A round in which the
  // batch happened to be flushed anyway (the WAL writer woke up) proves nothing: try again.
  let window: { confirmed: bigint; sourceStart: bigint } | null = null;
  for (let round = 0; round < 5 && window === null; round++) {
    const sourceStart = await walInsertPosition(sql);
    // a synchronous commit: it flushes its own WAL, and every earlier round's batch with it
    await createPage(sql, { id: `page_${round}`, org: 'org_a', tx: `tx_${round}` });
    await waitFor(async () => (await activityCount(sql)) === round + 1, { what: `activity ${round + 1}` });
    const batchCommitted = await walInsertPosition(sql);
    // The worker has nothing open, ready or in flight now; keepalives keep arriving.
    await new Promise((resolve) => setTimeout(resolve, 10 * KEEPALIVE_INTERVAL_MS));
    const { flushed, confirmed } = await walFlushAndSlot(sql);
    if (flushed < batchCommitted) window = { confirmed, sourceStart };
  }
  expect(window, 'a round whose batch is committed but not flushed').not.toBeNull();
  expect(
    window?.confirmed,
    'the slot is not told the change is done while its activity is unflushed',
  ).toBeLessThanOrEqual(window?.sourceStart ?? 0n);

  // Once anything flushes the WAL (here a synchronous commit of an untracked table), the batch's
  // acknowledgement goes out.
  await seedTenants(sql, ['org_b']);
  await waitFor(async () => (await walFlushAndSlot(sql)).confirmed > (window?.sourceStart ?? 0n), {
    what: 'the acknowledgement after the flush',
  });
});

it('lets PostgreSQL shut down while a committed batch waits for its WAL flush', {
  timeout: 90_000,
}, async () => {
  const before = await activityCount(sql);
  let unflushed = false;
  for (let round = 0; round < 5 && !unflushed; round++) {
    await createPage(sql, { id: `page_stop_${round}`, org: 'org_a', tx: `tx_stop_${round}` });
    await waitFor(async () => (await activityCount(sql)) === before + round + 1, {
      what: `activity ${round}`,
    });
    const batchCommitted = await walInsertPosition(sql);
    unflushed = (await walFlushAndSlot(sql)).flushed < batchCommitted;
  }
  expect(unflushed, 'a batch committed but not flushed when the shutdown starts').toBe(true);

  await sql.end({ timeout: 1 });
  // without the worker ending its replication connection, this waited for good
  await withTimeout(cluster.stop(), 20_000, 'PostgreSQL did not shut down within 20 s');
  await sleep(200);
  await cluster.start();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await createPage(sql, { id: 'page_after_restart', org: 'org_a', tx: 'tx_after_restart' });
  // every change, including the batch that waited at the shutdown, has exactly one activity
  const transactionIds = async (query: Promise<{ tx: string }[]>) => (await query).map((r) => r.tx).sort();
  const committed = await transactionIds(sql`select transactions ->> 'insert' as tx from pages`);
  await waitFor(async () => (await activityCount(sql)) >= committed.length, {
    what: 'the worker streaming again',
  });
  expect(await transactionIds(sql`select transaction_id as tx from activities`)).toEqual(committed);
});

/**
 * A source transaction of exactly n full parts ends with an empty last part: its commit comes
 * after the last change filled a part, and that full part's batch starts at once. The empty part
 * then reaches the sink in a batch of its own, and it is what closes the transaction in
 * cdc_state (open_lsn back to null). Were it taken for written, cdc_state would stay open on
 * that transaction and every later batch would be refused as a conflict, retried forever: the
 * worker would write nothing more. Each round here writes such a transaction and then one more
 * change, whose activity must arrive.
 */
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import { createPage, seedTenants, testLogger, waitForActivities } from './support/tracked-writes.ts';

const BATCH_SIZE = 5;
const ROUNDS = 5;

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let worker: CdcWorker | undefined;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await seedTenants(sql, ['org_a']);
});

afterAll(async () => {
  await worker?.stop();
  await sql?.end({ timeout: 1 });
  await cluster?.destroy();
});

it('goes on after a transaction of exactly two full parts', { timeout: 90_000 }, async () => {
  worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger, batchSize: BATCH_SIZE });
  await worker.streaming();
  let expected = 0;
  for (let round = 0; round < ROUNDS; round++) {
    await sql`
      insert into pages (id, organization_id, created_by, transactions, title)
      select ${`bulk_${round}_`} || i, 'org_a', 'user_1',
             jsonb_build_object('insert', ${`tx_bulk_${round}_`} || i, 'update', null, 'delete', null), 'bulk'
      from generate_series(1, ${2 * BATCH_SIZE}) as i`;
    await createPage(sql, { id: `after_${round}`, org: 'org_a', tx: `tx_after_${round}` });
    expected += 2 * BATCH_SIZE + 1;
    await waitForActivities(sql, expected, 15_000);
  }
  const [state] = await sql<{ open_lsn: string | null }[]>`select open_lsn from cdc_state`;
  expect(state?.open_lsn).toBeNull();
});

/**
 * A slot that cannot resume — dropped, or invalidated because max_slot_wal_keep_size let its
 * WAL go — is detected and recovered by the documented resync: epoch + 1, resynced_at set,
 * entity_counts recomputed from the live rows, streaming resumes (cdc/README.md).
 */

import { readCdcStatus } from '@sync/db/cdc-status';
import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import { type EmbeddedCluster, startEmbeddedPostgres } from '@sync/db/embedded-postgres';
import { runMigrations } from '@sync/db/migrations';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import {
  activityCount,
  createPage,
  liveCounts,
  seedTenants,
  softDeletePage,
  storedCounts,
  testLogger,
  waitFor,
  waitForActivities,
} from './support/tracked-writes.ts';

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let worker: CdcWorker | undefined;

const start = async () => {
  worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger });
  await worker.streaming();
};
const stop = async () => {
  await worker?.stop();
  worker = undefined;
};

async function state() {
  const [row] = await sql<{ epoch: number; resynced_at: Date | null }[]>`
    select epoch, resynced_at from cdc_state where slot_name = ${DEFAULT_SLOT_NAME}`;
  return row;
}

beforeAll(async () => {
  // startTestDatabase() keeps 256MB for slots; 1MB (less than one segment) lets a checkpoint
  // invalidate a stopped worker's slot as soon as the WAL moves on to the next segment.
  cluster = await startEmbeddedPostgres({ fast: true, maxSlotWalKeepSize: '1MB' });
  await runMigrations(cluster.url);
  sql = postgres(cluster.url, { onnotice: () => {}, max: 4 });
  await seedTenants(sql, ['org_a', 'org_b']);
  await start();
  for (let i = 0; i < 4; i++) await createPage(sql, { id: `page_${i}`, org: 'org_a', tx: `tx_${i}` });
  await waitForActivities(sql, 4);
});

afterAll(async () => {
  await stop();
  await sql?.end();
  await cluster?.destroy();
});

describe('resync', () => {
  it('recreates a dropped slot: epoch + 1, counts recomputed, streaming resumes', async () => {
    await stop();
    await sql`select pg_drop_replication_slot(${DEFAULT_SLOT_NAME})`;
    expect((await readCdcStatus(sql)).status).toBe('missing');
    // changes while there is no slot: they can never become activities
    await createPage(sql, { id: 'page_gap_1', org: 'org_b', tx: 'tx_gap_1' });
    await softDeletePage(sql, { id: 'page_0', tx: 'tx_gap_2' });

    await start();
    expect(await state()).toMatchObject({ epoch: 2, resynced_at: expect.any(Date) });
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
    expect(await storedCounts(sql)).toEqual({ 'page/org_a': 3, 'page/org_b': 1 });

    const before = await activityCount(sql);
    await createPage(sql, { id: 'page_after_1', org: 'org_b', tx: 'tx_after_1' });
    await waitForActivities(sql, before + 1);
    expect(await storedCounts(sql)).toEqual({ 'page/org_a': 3, 'page/org_b': 2 });
    expect(await readCdcStatus(sql)).toMatchObject({ status: 'streaming', epoch: 2 });
  });

  it('drops and recreates a slot invalidated by max_slot_wal_keep_size (wal_status lost)', async () => {
    await stop();
    await softDeletePage(sql, { id: 'page_1', tx: 'tx_lost_1' });
    // move the WAL to a new segment and checkpoint: the stopped slot's WAL is removed
    await sql`select pg_switch_wal()`;
    await sql`insert into users (id, email, name, password_hash) values ('wal_filler', 'w@example.com', 'W', 'x')`;
    await sql`checkpoint`;
    const [slot] =
      await sql`select wal_status, invalidation_reason from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
    expect(slot).toMatchObject({ wal_status: 'lost', invalidation_reason: 'wal_removed' });
    expect((await readCdcStatus(sql)).status).toBe('lost');

    await start();
    expect(await state()).toMatchObject({ epoch: 3, resynced_at: expect.any(Date) });
    const [recreated] =
      await sql`select wal_status from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
    expect(recreated?.wal_status).not.toBe('lost');
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));

    const before = await activityCount(sql);
    await createPage(sql, { id: 'page_after_2', org: 'org_a', tx: 'tx_after_2' });
    await waitForActivities(sql, before + 1);
    await waitFor(async () => (await storedCounts(sql))['page/org_a'] === 3, {
      what: 'the new page counted',
    });
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
  });

  it('finishes a resync a crash interrupted (resynced_at still null) without bumping the epoch again', async () => {
    await stop();
    await sql`update cdc_state set epoch = epoch + 1, resynced_at = null where slot_name = ${DEFAULT_SLOT_NAME}`;
    await createPage(sql, { id: 'page_gap_3', org: 'org_b', tx: 'tx_gap_3' });
    await start();
    expect(await state()).toMatchObject({ epoch: 4, resynced_at: expect.any(Date) });
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
  });

  it('keeps the writes made after an API start resynced a missing slot, before the worker returns', async () => {
    await stop();
    await sql`select pg_drop_replication_slot(${DEFAULT_SLOT_NAME})`;
    await createPage(sql, { id: 'page_lost_while_missing', org: 'org_a', tx: 'tx_lost_while_missing' });
    // an API (re)start runs the migration step, which recreates the slot
    await runMigrations(cluster.url);
    expect(await state()).toMatchObject({ epoch: 5, resynced_at: expect.any(Date) });
    expect((await readCdcStatus(sql)).status).toBe('starting');
    const before = await activityCount(sql);
    await createPage(sql, { id: 'page_kept_1', org: 'org_b', tx: 'tx_kept_1' });
    await softDeletePage(sql, { id: 'page_kept_1', tx: 'tx_kept_2' });
    await start();
    await waitForActivities(sql, before + 2);
    const kept =
      await sql`select transaction_id from activities where transaction_id like 'tx_kept_%' order by 1`;
    expect(kept.map((r) => r.transaction_id)).toEqual(['tx_kept_1', 'tx_kept_2']);
    expect((await state())?.epoch).toBe(5);
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
  });

  it('resumes a healthy slot without a resync', async () => {
    await stop();
    await createPage(sql, { id: 'page_while_stopped', org: 'org_a', tx: 'tx_while_stopped' });
    const before = await activityCount(sql);
    await start();
    await waitForActivities(sql, before + 1);
    expect((await state())?.epoch).toBe(5);
  });
});

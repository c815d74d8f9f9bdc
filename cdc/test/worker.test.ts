/**
 * The worker against a real PostgreSQL, in-process: one activity per committed change of a
 * tracked table, counts, NOTIFY, idle heartbeats, replays, backpressure, status and retention.
 */

import { readCdcStatus } from '@sync/db/cdc-status';
import { DEFAULT_SLOT_NAME, NOTIFY_CHANNEL } from '@sync/db/constants';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { parseLsn } from '@sync/db/lsn';
import { parseActivityNotification } from '@sync/db/notification';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRetention } from '../src/retention.ts';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import {
  activityCount,
  createAttachment,
  createPage,
  liveCounts,
  sameCounts,
  seedTenants,
  softDeletePage,
  storedCounts,
  testLogger,
  updatePage,
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

async function confirmedFlushLsn(): Promise<bigint> {
  const [slot] = await sql<{ lsn: string }[]>`
    select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
  return parseLsn(slot?.lsn ?? '0/0');
}

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 5 });
  await seedTenants(sql, ['org_a', 'org_b']);
  await start();
});

afterAll(async () => {
  await stop();
  await sql?.end();
  await cluster?.destroy();
});

describe('activities', () => {
  it('writes exactly one activity per committed change of a tracked table, with its fields', async () => {
    const before = await activityCount(sql);
    await createPage(sql, {
      id: 'page_1',
      org: 'org_a',
      tx: 'tx_create_1',
      client: 'client_x',
      title: 'One',
    });
    await updatePage(sql, {
      id: 'page_1',
      title: 'One, edited',
      tx: 'tx_update_1',
      user: 'user_1',
      client: 'client_y',
    });
    await softDeletePage(sql, { id: 'page_1', tx: 'tx_delete_1', client: 'client_z' });
    await createAttachment(sql, { id: 'att_1', org: 'org_b', pageId: null, tx: 'tx_attach_1' });
    // not tracked: no activities
    await sql`insert into users (id, email, name, password_hash) values ('user_2', 'u2@example.com', 'U2', 'x')`;
    await sql`update organizations set name = 'Renamed' where id = 'org_a'`;
    // rolled back: no activities
    await sql
      .begin(async (tx) => {
        await createPage(tx, { id: 'page_never', org: 'org_a', tx: 'tx_never' });
        throw new Error('roll back');
      })
      .catch(() => {});
    await waitForActivities(sql, before + 4);

    const rows = await sql`
      select lsn::text, position, type, action, entity_type, entity_id, organization_id, user_id, transaction_id,
        client_id, changed_keys, row, previous_values, xid::int, created_at
      from activities order by activities.lsn, activities.position`;
    expect(rows.map((r) => [r.type, r.entity_id, r.transaction_id, r.client_id])).toEqual([
      ['page.created', 'page_1', 'tx_create_1', 'client_x'],
      ['page.updated', 'page_1', 'tx_update_1', 'client_y'],
      ['page.deleted', 'page_1', 'tx_delete_1', 'client_z'],
      ['attachment.created', 'att_1', 'tx_attach_1', 'client_1'],
    ]);
    const [created, updated, deleted] = rows;
    expect(created).toMatchObject({
      action: 'create',
      organization_id: 'org_a',
      user_id: 'user_1',
      position: 0,
    });
    expect(created?.row).toMatchObject({
      id: 'page_1',
      title: 'One',
      transactions: { insert: 'tx_create_1', update: null, delete: null },
    });
    expect(updated).toMatchObject({
      action: 'update',
      changed_keys: ['title'],
      previous_values: { title: 'One' },
    });
    expect(deleted).toMatchObject({
      action: 'delete',
      changed_keys: ['deleted_at'],
      previous_values: { deleted_at: null },
    });
    expect(deleted?.row.deleted_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?\+00$/);
    expect(deleted?.row.transactions).toEqual({
      insert: 'tx_create_1',
      update: 'tx_update_1',
      delete: 'tx_delete_1',
    });
    // created_at is the WAL commit time: after the row's own created_at, and the key follows commit order
    expect(new Date(created?.created_at).getTime()).toBeGreaterThanOrEqual(
      new Date(created?.row.created_at).getTime() - 1,
    );
    const lsns = rows.map((r) => BigInt(r.lsn));
    expect([...lsns].sort((a, b) => (a < b ? -1 : 1))).toEqual(lsns);
    expect(new Set(lsns).size).toBe(4);
  });

  it('keeps the order of a multi-row transaction in the positions under one commit LSN and xid', async () => {
    const before = await activityCount(sql);
    const [transaction] = await sql.begin(async (tx) => {
      await createPage(tx, { id: 'page_m1', org: 'org_a', tx: 'tx_m1' });
      await createPage(tx, { id: 'page_m2', org: 'org_b', tx: 'tx_m2' });
      await updatePage(tx, { id: 'page_m1', title: 'm1 edited', tx: 'tx_m3' });
      await createAttachment(tx, { id: 'att_m', org: 'org_a', pageId: 'page_m1', tx: 'tx_m4' });
      return tx<{ xid: number }[]>`select pg_current_xact_id()::text::int8 as xid`;
    });
    await waitForActivities(sql, before + 4);
    const rows = await sql`
      select lsn::text, position, transaction_id, xid::int8::text as xid from activities
      where transaction_id like 'tx_m%' order by activities.lsn, activities.position`;
    expect(rows.map((r) => [r.position, r.transaction_id])).toEqual([
      [0, 'tx_m1'],
      [1, 'tx_m2'],
      [2, 'tx_m3'],
      [3, 'tx_m4'],
    ]);
    expect(new Set(rows.map((r) => r.lsn)).size).toBe(1);
    expect(rows.every((r) => r.xid === String(transaction?.xid))).toBe(true);
  });

  it('records a hard delete with the old row', async () => {
    const before = await activityCount(sql);
    await sql`delete from attachments where id = 'att_1'`;
    await waitForActivities(sql, before + 1);
    const [row] = await sql`select type, action, entity_id, row from activities order by lsn desc limit 1`;
    expect(row).toMatchObject({ type: 'attachment.deleted', action: 'delete', entity_id: 'att_1' });
    expect(row?.row.filename).toBe('file.png');
  });

  it('keeps entity_counts equal to the live rows', async () => {
    await waitFor(async () => sameCounts(await storedCounts(sql), await liveCounts(sql)), {
      what: 'counts to match',
    }).catch(async () => expect(await storedCounts(sql)).toEqual(await liveCounts(sql)));
    expect(await storedCounts(sql)).toEqual({ 'page/org_a': 1, 'page/org_b': 1, 'attachment/org_a': 1 });
  });

  it('NOTIFYs sync_activities with the highest activity id and the organizations touched', async () => {
    const received: string[] = [];
    const listener = await sql.listen(NOTIFY_CHANNEL, (payload) => received.push(payload));
    await createPage(sql, { id: 'page_n', org: 'org_b', tx: 'tx_notify' });
    await waitFor(async () => received.length > 0, { what: 'a notification' });
    await listener.unlisten();
    const notification = parseActivityNotification(received[0] as string);
    const [last] =
      await sql`select lsn::text || '_' || position as id from activities order by lsn desc, position desc limit 1`;
    expect(notification).toEqual({ id: last?.id, organizationIds: ['org_b'] });
  });
});

describe('slot position', () => {
  it('advances the slot on an idle database (heartbeat acknowledgements)', async () => {
    const start = await confirmedFlushLsn();
    // WAL from untracked tables only: nothing for the worker to write
    for (let i = 0; i < 20; i++) {
      await sql`insert into users (id, email, name, password_hash) values (${`idle_${i}`}, ${`idle_${i}@example.com`}, 'I', 'x')`;
    }
    const [wal] = await sql<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`;
    const target = parseLsn(wal?.lsn ?? '0/0');
    await waitFor(async () => (await confirmedFlushLsn()) >= target, {
      what: 'confirmed_flush_lsn to pass the idle WAL',
    });
    expect(await confirmedFlushLsn()).toBeGreaterThan(start);
  });

  it('writes a replayed stretch of WAL only once (slot rewound behind written activities)', async () => {
    await stop();
    await sql`select pg_copy_logical_replication_slot(${DEFAULT_SLOT_NAME}, 'rewind_point')`;
    await start();
    const before = await activityCount(sql);
    for (let i = 0; i < 5; i++) await createPage(sql, { id: `page_r${i}`, org: 'org_a', tx: `tx_r${i}` });
    await softDeletePage(sql, { id: 'page_r0', tx: 'tx_r_delete' });
    await waitForActivities(sql, before + 6);
    const counts = await storedCounts(sql);
    await stop();

    // the slot goes back to before those six changes; cdc_state still says they are written
    await sql`select pg_drop_replication_slot(${DEFAULT_SLOT_NAME})`;
    await sql`select pg_copy_logical_replication_slot('rewind_point', ${DEFAULT_SLOT_NAME})`;
    await sql`select pg_drop_replication_slot('rewind_point')`;
    await start();
    await createPage(sql, { id: 'page_after_replay', org: 'org_a', tx: 'tx_after_replay' });
    await waitForActivities(sql, before + 7);
    const [state] = await sql`select epoch from cdc_state where slot_name = ${DEFAULT_SLOT_NAME}`;
    expect(state?.epoch).toBe(1);
    expect(await storedCounts(sql)).toEqual({ ...counts, 'page/org_a': (counts['page/org_a'] ?? 0) + 1 });
    expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
  });

  it('holds acknowledgements while activities cannot be written, then catches up', async () => {
    const before = await activityCount(sql);
    await sql`alter table activities rename to activities_offline`;
    try {
      await createPage(sql, { id: 'page_bp', org: 'org_b', tx: 'tx_backpressure' });
      const [wal] = await sql<{ lsn: string }[]>`select pg_current_wal_insert_lsn()::text as lsn`;
      const afterWrite = parseLsn(wal?.lsn ?? '0/0');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // more WAL elsewhere would normally be acknowledged by a heartbeat; not while a batch is pending
      await sql`insert into users (id, email, name, password_hash) values ('bp_user', 'bp@example.com', 'B', 'x')`;
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await confirmedFlushLsn()).toBeLessThan(afterWrite);
    } finally {
      await sql`alter table activities_offline rename to activities`;
    }
    await waitForActivities(sql, before + 1);
    const [row] = await sql`select transaction_id from activities order by lsn desc limit 1`;
    expect(row?.transaction_id).toBe('tx_backpressure');
  });
});

describe('batching', () => {
  it('writes a change at once when no batch is in flight, however long the flush interval', {
    timeout: 60_000,
  }, async () => {
    await stop();
    worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger, flushIntervalMs: 120_000 });
    try {
      await worker.streaming();
      const before = await activityCount(sql);
      await createPage(sql, { id: 'page_idle_flush', org: 'org_a', tx: 'tx_idle_flush' });
      // an idle pipeline does not wait for the interval (it would take 120 s here)
      await waitForActivities(sql, before + 1, 20_000);
    } finally {
      await stop();
      await start();
    }
  });
});

describe('status and retention', () => {
  it('reports streaming, then stopped, and missing for an unknown slot', async () => {
    await waitFor(async () => (await readCdcStatus(sql, DEFAULT_SLOT_NAME)).lagBytes < 1_000_000, {
      what: 'small lag',
    });
    const streaming = await readCdcStatus(sql, DEFAULT_SLOT_NAME);
    expect(streaming).toMatchObject({ status: 'streaming', epoch: 1 });
    expect(typeof streaming.lastEventAt).toBe('string');
    // the worker records its own peak RSS with each batch
    expect(streaming.workerPeakRssBytes).toBeGreaterThan(10 * 2 ** 20);
    await stop();
    await waitFor(async () => (await readCdcStatus(sql)).status === 'stopped', { what: 'stopped status' });
    expect(await readCdcStatus(sql, 'no_such_slot')).toEqual({
      status: 'missing',
      lagBytes: 0,
      lastEventAt: null,
      epoch: 1,
      workerPeakRssBytes: null,
    });
    await start();
  });

  it('deletes activities and idempotency records older than their retention windows, in batches', async () => {
    await sql`
      insert into activities (lsn, position, type, action, entity_type, entity_id, organization_id, changed_keys, row, xid, created_at)
      select i, 0, 'page.created', 'create', 'page', 'old_' || i, 'org_a', '{}', '{}', 1, now() - interval '40 days'
      from generate_series(1, 7) i`;
    await sql`
      insert into applied_transactions (transaction_id, organization_id, entity_type, entity_id, action, applied_at)
      values ('old_tx_1', 'org_a', 'page', 'x', 'create', now() - interval '8 days'),
             ('old_tx_2', 'org_a', 'page', 'x', 'update', now() - interval '8 days'),
             ('new_tx_1', 'org_a', 'page', 'x', 'update', now() - interval '1 day')`;
    const total = await activityCount(sql);
    const result = await applyRetention({
      sql,
      activityRetentionDays: 30,
      idempotencyRetentionDays: 7,
      batchSize: 3,
    });
    expect(result).toEqual({ activities: 7, appliedTransactions: 2 });
    expect(await activityCount(sql)).toBe(total - 7);
    const left =
      await sql`select transaction_id from applied_transactions where transaction_id like '%tx_%' order by 1`;
    expect(left.map((r) => r.transaction_id)).toEqual(['new_tx_1']);
  });

  it('finds the newest expired activity among many, with gaps between their LSNs, and keeps the rest', async () => {
    // 400 expired transactions of 3 activities each, then 300 just inside the window, all below
    // the worker's own activities; commit times grow with the LSN, as in the WAL
    await sql`
      insert into activities (lsn, position, type, action, entity_type, entity_id, organization_id, changed_keys, row, xid, created_at)
      select 1000 + i * 37, p, 'page.created', 'create', 'page', 'aged_' || i, 'org_a', '{}', '{}', 1,
        now() - interval '31 days' + i * interval '1 second'
      from generate_series(0, 399) i, generate_series(0, 2) p`;
    await sql`
      insert into activities (lsn, position, type, action, entity_type, entity_id, organization_id, changed_keys, row, xid, created_at)
      select 1000 + (400 + i) * 37 + (i % 5), 0, 'page.created', 'create', 'page', 'kept_' || i, 'org_a', '{}', '{}', 1,
        now() - interval '29 days' + i * interval '1 second'
      from generate_series(0, 299) i`;
    const total = await activityCount(sql);
    // (the worker's own retention job may be running too: look at what is left)
    await applyRetention({ sql, activityRetentionDays: 30, idempotencyRetentionDays: 7 });
    expect(await activityCount(sql)).toBe(total - 1_200);
    const [log] = await sql<
      { pruned: string }[]
    >`select pruned_through_lsn::text as pruned from activity_log`;
    expect(log?.pruned).toBe(String(1000 + 399 * 37));
    const [kept] = await sql<{ count: number }[]>`
      select count(*)::int as count from activities where entity_id like 'kept_%'`;
    expect(kept?.count).toBe(300);
    await sql`delete from activities where entity_id like 'kept_%'`;
  });
});

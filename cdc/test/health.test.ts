/**
 * `/api/health` speaks the contract's four CDC words, whatever the worker's own state:
 *   starting (no worker streamed yet) → streaming → lagging (a streaming worker that cannot
 *   write holds WAL back) → streaming again → down (worker stopped; slot missing).
 * The worker's state behind the word is `cdc.detail`.
 */
import { ApiClient } from '@sync/backend/api-client';
import { startApiServer } from '@sync/backend/server';
import { CDC_HEALTH_WORDS } from '@sync/db/cdc-status';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCdcWorker } from '../src/worker.ts';
import { createPage, seedTenants, testLogger, waitFor } from './support/tracked-writes.ts';

const LAGGING_BYTES = 256 * 1024;

let cluster: Awaited<ReturnType<typeof startTestDatabase>>;
let sql: postgres.Sql;
let api: Awaited<ReturnType<typeof startApiServer>>;
let client: ApiClient;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 4 });
  api = await startApiServer({
    databaseUrl: cluster.url,
    logger: testLogger,
    config: { cdcLaggingBytes: LAGGING_BYTES },
  });
  client = new ApiClient(api.url);
  await seedTenants(sql, ['org_health']);
});

afterAll(async () => {
  await api?.close();
  await sql?.end();
  await cluster?.destroy();
});

async function cdcHealth(): Promise<{ status: string; detail: string | null; lagBytes: number }> {
  const res = await client.request('GET', '/api/health');
  expect(res.status).toBe(200);
  return res.body.cdc;
}

it('documents exactly the four words in the OpenAPI document', async () => {
  const res = await client.request('GET', '/api/openapi.json');
  const cdc = res.body.components.schemas.Health.properties.cdc.properties;
  expect(cdc.status.enum).toEqual([...CDC_HEALTH_WORDS]);
  expect(CDC_HEALTH_WORDS).toEqual(['starting', 'streaming', 'lagging', 'down']);
});

it('maps every worker state onto starting, streaming, lagging or down', { timeout: 120_000 }, async () => {
  expect(await cdcHealth()).toMatchObject({ status: 'starting', detail: 'starting' });

  const worker = startCdcWorker({ databaseUrl: cluster.url, logger: testLogger });
  try {
    await worker.streaming();
    expect(await cdcHealth()).toMatchObject({ status: 'streaming', detail: 'streaming' });

    // The worker cannot write its batch while activities is locked: the slot holds the WAL of
    // that change and of everything after it, and the worker stays attached.
    const locked = sql.reserve();
    const holder = await locked;
    await holder`begin`;
    await holder`lock table activities in access exclusive mode`;
    try {
      await createPage(sql, { id: 'page_lag', org: 'org_health', tx: 'tx_lag' });
      await sql`create table wal_filler (x text)`;
      await sql`insert into wal_filler select repeat('x', 1000) from generate_series(1, 2000)`;
      const lagging = await waitFor(
        async () => {
          const cdc = await cdcHealth();
          return cdc.status === 'lagging' ? cdc : null;
        },
        { what: 'cdc.status lagging', timeoutMs: 30_000 },
      );
      expect(lagging).toMatchObject({ detail: 'streaming' });
      expect(lagging.lagBytes).toBeGreaterThan(LAGGING_BYTES);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    await waitFor(async () => (await cdcHealth()).status === 'streaming', {
      what: 'cdc.status streaming after the lag',
      timeoutMs: 30_000,
    });
  } finally {
    await worker.stop();
  }

  // the walsender may take a moment to leave after the worker closed its connection
  await waitFor(async () => (await cdcHealth()).status === 'down', { what: 'cdc.status down' });
  expect(await cdcHealth()).toMatchObject({ status: 'down', detail: 'stopped' });
  await sql`select pg_drop_replication_slot('sync_activities')`;
  expect(await cdcHealth()).toMatchObject({ status: 'down', detail: 'missing' });
});

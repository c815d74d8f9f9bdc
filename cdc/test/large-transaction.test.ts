/**
 * Bounded memory for a large source transaction, exactly once under kill -9: one transaction of
 * 500,000 changes is written in parts as it arrives (cdc_state.open_lsn/open_position), the
 * standalone worker is killed twice while it is half written, and the end state is exactly
 * 500,000 activities (every position once) with the counts of the table. The worker's own
 * metric (cdc_state.worker_peak_rss_bytes, its process's peak RSS) stays under 300 MB.
 */
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  exited,
  liveCounts,
  seedTenants,
  spawnWorker,
  storedCounts,
  waitFor,
} from './support/tracked-writes.ts';

const CHANGES = 500_000;
const RSS_LIMIT_BYTES = 300 * 1024 * 1024;

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let child: ChildProcess | undefined;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 3 });
  await seedTenants(sql, ['org_a', 'org_b']);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await sql?.end();
  await cluster?.destroy();
});

interface Progress {
  openPosition: number | null;
  lastLsn: bigint;
  peakRss: number | null;
}

async function progress(): Promise<Progress> {
  const [row] = await sql<{ open_position: number | null; last_lsn: string; rss: string | null }[]>`
    select open_position, last_lsn::text, worker_peak_rss_bytes::text as rss
    from cdc_state where slot_name = ${DEFAULT_SLOT_NAME}`;
  return {
    openPosition: row?.open_position ?? null,
    lastLsn: BigInt(row?.last_lsn ?? 0),
    peakRss: row?.rss ? Number(row.rss) : null,
  };
}

it(`writes one ${CHANGES.toLocaleString('en')}-change transaction exactly once in bounded memory, killed -9 twice`, {
  timeout: 300_000,
}, async () => {
  const started = Date.now();
  await sql`
    insert into pages (id, organization_id, created_by, transactions, last_client_id, title)
    select 'big_' || i, case when i % 2 = 0 then 'org_a' else 'org_b' end, 'user_1',
      jsonb_build_object('insert', 'tx_big_' || i, 'update', null, 'delete', null), 'client_big', 'Page ' || i
    from generate_series(0, ${CHANGES - 1}) as i`;
  const before = await progress();
  let peakRss = 0;
  const sample = async () => {
    const now = await progress();
    peakRss = Math.max(peakRss, now.peakRss ?? 0);
    return now;
  };

  // kill the worker twice while the transaction is half written, each time further in
  let reached = 0;
  for (let kill = 0; kill < 2; kill++) {
    child = spawnWorker(cluster.url);
    const at = await waitFor(
      async () => {
        const now = await sample();
        return now.openPosition !== null && now.openPosition > reached ? now.openPosition : null;
      },
      { what: `the worker to write a part beyond position ${reached}`, timeoutMs: 120_000 },
    );
    expect((await progress()).lastLsn).toBe(before.lastLsn);
    child.kill('SIGKILL');
    await exited(child);
    reached = at;
  }
  expect(reached).toBeLessThan(CHANGES);

  child = spawnWorker(cluster.url);
  await waitFor(
    async () => {
      const now = await sample();
      return now.lastLsn > before.lastLsn && now.openPosition === null;
    },
    { what: 'the whole transaction to be written', timeoutMs: 180_000 },
  );
  const [stats] = await sql<
    { count: number; positions: number; first: number; last: number; lsns: number }[]
  >`
    select count(*)::int as count, count(distinct position)::int as positions, min(position) as first,
      max(position) as last, count(distinct lsn)::int as lsns
    from activities where transaction_id like 'tx_big_%'`;
  expect(stats).toEqual({ count: CHANGES, positions: CHANGES, first: 0, last: CHANGES - 1, lsns: 1 });
  expect(await storedCounts(sql)).toEqual(await liveCounts(sql));
  console.info(
    `large transaction: ${CHANGES} changes, killed at position ${reached}, peak worker RSS ${(peakRss / 2 ** 20).toFixed(0)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  expect(peakRss).toBeGreaterThan(0);
  expect(peakRss).toBeLessThan(RSS_LIMIT_BYTES);

  child.kill('SIGTERM');
  await exited(child);
});

/**
 * Crash safety (guarantee 3): the standalone worker is killed with SIGKILL at random moments —
 * during startup, setup, streaming, mid-batch — and restarted, at least ten times, while a
 * writer commits inserts, updates, soft deletes and multi-row transactions. Afterwards every
 * committed change has exactly one activity (no gap, no duplicate, order kept within each
 * transaction) and entity_counts equal the live rows.
 */
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createPage,
  exited,
  liveCounts,
  seedTenants,
  softDeletePage,
  spawnWorker,
  storedCounts,
  updatePage,
  waitFor,
} from './support/tracked-writes.ts';

const KILLS = 12;
const ORGANIZATIONS = ['org_a', 'org_b', 'org_c'];

interface CommittedChange {
  tx: string;
  action: 'create' | 'update' | 'delete';
  entityId: string;
}

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let child: ChildProcess | undefined;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 6 });
  await seedTenants(sql, ORGANIZATIONS);
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await sql?.end();
  await cluster?.destroy();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min));

async function slotActive(): Promise<boolean> {
  const [slot] = await sql`select active from pg_replication_slots where slot_name = ${DEFAULT_SLOT_NAME}`;
  return slot?.active === true;
}

/** One writer: owns its pages, records each change once its transaction has committed. */
async function writeUntil(stopped: () => boolean, name: string, committed: CommittedChange[]): Promise<void> {
  const live: string[] = [];
  let n = 0;
  const next = () => `${name}_${n++}`;
  while (!stopped()) {
    const dice = Math.random();
    const org = ORGANIZATIONS[n % ORGANIZATIONS.length] as string;
    if (dice < 0.45 || live.length < 3) {
      const id = next();
      await createPage(sql, { id, org, tx: `tx_${id}`, client: name });
      committed.push({ tx: `tx_${id}`, action: 'create', entityId: id });
      live.push(id);
    } else if (dice < 0.7) {
      const id = live[random(0, live.length)] as string;
      const tx = `tx_${next()}`;
      await updatePage(sql, { id, title: tx, tx, client: name });
      committed.push({ tx, action: 'update', entityId: id });
    } else if (dice < 0.82) {
      const id = live.splice(random(0, live.length), 1)[0] as string;
      const tx = `tx_${next()}`;
      await softDeletePage(sql, { id, tx, client: name });
      committed.push({ tx, action: 'delete', entityId: id });
    } else {
      // several changes in one source transaction
      const changes: CommittedChange[] = [];
      const a = next();
      const b = next();
      const target = live[random(0, live.length)] as string;
      const update = `tx_${next()}`;
      await sql.begin(async (tx) => {
        await createPage(tx, { id: a, org, tx: `tx_${a}`, client: name });
        await updatePage(tx, { id: target, title: update, tx: update, client: name });
        await createPage(tx, { id: b, org, tx: `tx_${b}`, client: name });
      });
      changes.push(
        { tx: `tx_${a}`, action: 'create', entityId: a },
        { tx: update, action: 'update', entityId: target },
        { tx: `tx_${b}`, action: 'create', entityId: b },
      );
      committed.push(...changes);
      live.push(a, b);
    }
    if (n % 10 === 0) await sleep(1);
  }
}

it(`loses and duplicates nothing when the worker is killed -9 ${KILLS} times mid-stream`, {
  timeout: 120_000,
}, async () => {
  // The activity log starts with the slot: let the first worker create it before writing.
  child = spawnWorker(cluster.url);
  await waitFor(slotActive, { what: 'the first worker to stream', timeoutMs: 30_000 });

  let writing = true;
  const committed: CommittedChange[][] = [[], []];
  const writers = Promise.all([
    writeUntil(() => !writing, 'w1', committed[0] as CommittedChange[]),
    writeUntil(() => !writing, 'w2', committed[1] as CommittedChange[]),
  ]);

  for (let kill = 0; kill < KILLS; kill++) {
    // half the kills land while streaming, the others anywhere from startup on
    if (kill % 2 === 0)
      await waitFor(slotActive, { what: 'the restarted worker to stream', timeoutMs: 30_000 });
    await sleep(random(50, 1_500));
    const victim = child as ChildProcess;
    victim.kill('SIGKILL');
    await exited(victim);
    child = spawnWorker(cluster.url);
  }
  writing = false;
  await writers;
  const changes = committed.flat();
  expect(changes.length).toBeGreaterThan(1_000);
  console.info(`crash test: ${changes.length} committed changes, ${KILLS} kills`);

  // the last worker catches up
  await waitFor(
    async () => {
      const [row] = await sql<{ count: number }[]>`select count(*)::int as count from activities`;
      return (row?.count ?? 0) >= changes.length;
    },
    { what: `${changes.length} activities`, timeoutMs: 60_000 },
  );

  const activities = await sql<
    { tx: string; action: string; entity_id: string; lsn: string; position: number }[]
  >`
    select transaction_id as tx, action, entity_id, lsn::text, position from activities order by activities.lsn, activities.position`;
  const key = (c: { tx: string; action: string; entityId: string }) => `${c.tx} ${c.action} ${c.entityId}`;
  expect(activities.length).toBe(changes.length);
  expect(activities.map((a) => key({ tx: a.tx, action: a.action, entityId: a.entity_id })).sort()).toEqual(
    changes.map(key).sort(),
  );
  // each writer's changes appear in the order it committed them (commit order = LSN order)
  for (const [i, writerChanges] of committed.entries()) {
    const prefix = `tx_w${i + 1}_`;
    expect(activities.filter((a) => a.tx.startsWith(prefix)).map((a) => a.tx)).toEqual(
      writerChanges.map((c) => c.tx),
    );
  }
  expect(await storedCounts(sql)).toEqual(await liveCounts(sql));

  // a clean stop exits 0
  const last = child as ChildProcess;
  last.kill('SIGTERM');
  await exited(last);
  expect(last.exitCode).toBe(0);
});

/**
 * Tabs: every tab writes to the one outbox of the device; one leader (Web Locks) drains it and
 * holds the live connections, and another takes over when it closes. Even without the lock
 * (two drainers at once) each transaction applies once.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncClient } from '../../src/lib/sync/index.ts';
import { createLockManager } from './support/locks.ts';
import {
  type Member,
  newDevice,
  openClient,
  pageEntity,
  startTestStack,
  switchableNetwork,
  type TestStack,
  until,
} from './support/sync-stack.ts';

let stack: TestStack;
let sql: postgres.Sql;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true });
  sql = postgres(stack.cluster.url, { max: 2 });
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

/** Two tabs of one device, both offline: each queues half of 100 creates and updates. */
async function twoOfflineTabs(member: Member, locks: ReturnType<typeof createLockManager> | undefined) {
  const device = newDevice();
  const networks = [switchableNetwork(), switchableNetwork()];
  const tabs = networks.map((network) => {
    network.offline = true;
    return openClient(stack, member, { device, environment: { fetch: network.fetch, locks } });
  }) as [SyncClient, SyncClient];
  const txIds: string[] = [];
  for (let i = 0; i < 50; i++) {
    const tab = tabs[i % 2] as SyncClient;
    const { id, txId } = await tab.create(pageEntity, { title: `tab page ${i}` });
    txIds.push(txId);
    txIds.push((await tab.update(pageEntity, id, { content: `from tab ${i % 2}` })).txId);
  }
  await until(
    () => tabs.every((tab) => tab.getSnapshot().outbox.length === 100),
    10_000,
    'both tabs see every entry',
  );
  return { tabs, networks, txIds };
}

async function effectsPerTransaction(txIds: string[]) {
  const rows = await sql<{ n: number }[]>`
    select count(*)::int as n from activities where transaction_id = any(${txIds}) group by transaction_id`;
  return { transactions: rows.length, duplicates: rows.filter((row) => row.n !== 1).length };
}

const allConfirmed = (tab: SyncClient) =>
  tab.getSnapshot().outbox.every((entry) => entry.status === 'confirmed');

describe('tabs on one device', () => {
  it('replays what two tabs queued once each, with one leader draining and sharing the feed', async () => {
    const member = await stack.client.newMember();
    const { tabs, networks, txIds } = await twoOfflineTabs(member, createLockManager());
    try {
      await until(() => tabs.some((tab) => tab.getSnapshot().leader), 5_000, 'a leader');
      expect(tabs.filter((tab) => tab.getSnapshot().leader)).toHaveLength(1);
      for (const network of networks) network.offline = false;
      for (const tab of tabs) tab.drain();
      await until(() => tabs.every(allConfirmed), 30_000, 'all confirmed in both tabs');
      expect(await effectsPerTransaction(txIds)).toEqual({ transactions: 100, duplicates: 0 });
      const follower = networks[tabs.findIndex((tab) => !tab.getSnapshot().leader)];
      const writesByFollower = [...(follower?.byKind ?? [])].filter(([kind]) =>
        /^(POST|PATCH|DELETE) /.test(kind),
      );
      expect(writesByFollower).toEqual([]);
      // the follower shows the leader's activity feed and counts without its own stream
      const followerTab = tabs.find((tab) => !tab.getSnapshot().leader) as SyncClient;
      await until(() => (followerTab.getSnapshot().counts.page ?? 0) === 50, 15_000, 'counts shared');
      expect([...(follower?.byKind.keys() ?? [])].some((kind) => kind.endsWith('/activities/stream'))).toBe(
        false,
      );
    } finally {
      for (const tab of tabs) await tab.close();
    }
  });

  it('applies each transaction once even when two tabs drain at the same time (no Web Locks)', async () => {
    const member = await stack.client.newMember();
    const { tabs, networks, txIds } = await twoOfflineTabs(member, undefined);
    try {
      expect(tabs.every((tab) => tab.getSnapshot().leader)).toBe(true);
      for (const network of networks) network.offline = false;
      await Promise.all(tabs.map(async (tab) => tab.drain()));
      await until(() => tabs.every(allConfirmed), 30_000, 'all confirmed in both tabs');
      expect(await effectsPerTransaction(txIds)).toEqual({ transactions: 100, duplicates: 0 });
    } finally {
      for (const tab of tabs) await tab.close();
    }
  });

  it('hands the drainer to another tab when the leader closes', async () => {
    const member = await stack.client.newMember();
    const locks = createLockManager();
    const device = newDevice();
    const first = openClient(stack, member, { device, environment: { locks } });
    await until(() => first.getSnapshot().leader, 5_000, 'first tab leads');
    const second = openClient(stack, member, { device, environment: { locks } });
    try {
      await second.ready;
      expect(second.getSnapshot().leader).toBe(false);
      await first.close();
      await until(() => second.getSnapshot().leader, 5_000, 'second tab takes over');
      const { txId } = await second.create(pageEntity, { title: 'after failover' });
      await second.waitFor(txId, ['confirmed']);
    } finally {
      await second.close();
    }
  });
});

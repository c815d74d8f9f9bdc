import { QueryClient } from '@tanstack/query-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncedItem } from '../../src/lib/sync/index.ts';
import {
  newDevice,
  openClient,
  pageEntity,
  startTestStack,
  switchableNetwork,
  type TestStack,
  until,
} from './support/sync-stack.ts';

let stack: TestStack;
let member: Awaited<ReturnType<TestStack['client']['newMember']>>;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true });
  member = await stack.client.newMember();
});
afterAll(async () => {
  await stack?.stop();
});

describe('a transaction from outbox to confirmed', () => {
  it('shows a create at once as pending, then confirms it from the shape stream', async () => {
    const sync = openClient(stack, member, { device: newDevice() });
    try {
      const { txId, id } = await sync.create(pageEntity, { title: 'Plan', content: 'first' });
      const item = sync.items(pageEntity).find((i) => i.id === id);
      expect(item?.value.title).toBe('Plan');
      expect(['pending', 'sent', 'confirmed']).toContain(item?.status);
      const confirmed = await sync.waitFor(txId, ['confirmed']);
      expect(confirmed.status).toBe('confirmed');
      await until(() => sync.items(pageEntity).find((i) => i.id === id)?.value.createdAt !== undefined);
      const res = await stack.client.request('GET', `/api/organizations/${member.org.slug}/pages/${id}`, {
        token: member.token,
      });
      expect(res.body.transactions.insert).toBe(txId);
      expect(res.body.lastClientId).toBe(sync.clientId);
    } finally {
      await sync.close();
    }
  });

  it('never shows the item missing or with old values between the optimistic change and the server row', async () => {
    const queryClient = new QueryClient();
    const sync = openClient(stack, member, { device: newDevice(), queryClient });
    try {
      const key = sync.queryOptions(pageEntity).queryKey;
      const seen: (SyncedItem<{ title: string }> | undefined)[] = [];
      let id = '';
      const unsubscribe = queryClient.getQueryCache().subscribe(() => {
        const items = queryClient.getQueryData<SyncedItem<{ title: string }>[]>(key) ?? [];
        if (id) seen.push(items.find((item) => item.id === id));
      });
      const created = await sync.create(pageEntity, { title: 'Steady' });
      id = created.id;
      await sync.waitFor(created.txId, ['confirmed']);
      const { txId: renamed } = await sync.update(pageEntity, id, { title: 'Steady 2' });
      const renamedAt = seen.length;
      await sync.waitFor(renamed, ['confirmed']);
      await until(() => seen.at(-1)?.status === 'confirmed' && seen.at(-1)?.value.title === 'Steady 2');
      unsubscribe();
      expect(seen.length).toBeGreaterThan(2);
      expect(seen.filter((item) => item === undefined)).toEqual([]);
      expect(seen.slice(renamedAt + 1).filter((item) => item?.value.title !== 'Steady 2')).toEqual([]);
    } finally {
      await sync.close();
    }
  });

  it('shows the activity feed and counts of the last visit at once after a reload', async () => {
    const device = newDevice();
    const first = openClient(stack, member, { device });
    const { txId } = await first.create(pageEntity, { title: 'In the feed' });
    await until(
      () => first.getSnapshot().activities.some((a) => a.transactionId === txId),
      15_000,
      'activity',
    );
    await until(() => (first.getSnapshot().counts.page ?? 0) > 0, 15_000, 'counts');
    // the feed is saved at most twice a second
    await new Promise((resolve) => setTimeout(resolve, 700));
    await first.close();

    const network = switchableNetwork();
    network.offline = true;
    const reloaded = openClient(stack, member, { device, environment: { fetch: network.fetch } });
    try {
      await reloaded.ready;
      expect(reloaded.getSnapshot().activities.some((a) => a.transactionId === txId)).toBe(true);
      expect(reloaded.getSnapshot().counts.page).toBeGreaterThan(0);
    } finally {
      await reloaded.close();
    }
  });
});

describe('closing', () => {
  it('leaves nothing unhandled when a client is closed while it is still opening', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      for (let i = 0; i < 5; i++) {
        const sync = openClient(stack, member, { device: newDevice() });
        await sync.close();
        await sync.ready.catch(() => {}); // what a caller of `ready` sees is theirs to handle
      }
      // a rejection nobody handles is reported after the microtasks and I/O callbacks it followed
      await new Promise((resolve) => setImmediate(resolve));
      await until(() => true);
    } finally {
      process.off('unhandledRejection', record);
    }
    expect(unhandled).toEqual([]);
  });
});

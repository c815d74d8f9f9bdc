import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newDevice,
  openClient,
  pageEntity,
  startTestStack,
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
});

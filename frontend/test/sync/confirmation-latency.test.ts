/**
 * A lone write is confirmed soon after its answer: the time from `update()` to `confirmed`
 * (the write, the CDC worker, the shape stream, the outbox) stays within a small multiple of
 * the bare PATCH measured in the same test, interleaved with it, because the machine may be
 * shared. It held a confirmation back for the WAL writer (up to 200 ms) while the tests'
 * PostgreSQL ran with its default `wal_writer_delay`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDevice, openClient, pageEntity, startTestStack, type TestStack } from './support/sync-stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ cdc: true });
});
afterAll(async () => {
  await stack?.stop();
});

const WRITES = 40;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

describe('confirmation latency', () => {
  it('confirms a lone update within 150 ms plus 4x the bare PATCH (medians of 40, interleaved)', async () => {
    const member = await stack.client.newMember();
    const headers = { authorization: `Bearer ${member.token}`, 'content-type': 'application/json' };
    const sync = openClient(stack, member, { device: newDevice() });
    try {
      const { id, txId: created } = await sync.create(pageEntity, { title: 'timed' });
      await sync.waitFor(created, ['confirmed']);
      const bare = await stack.client.request('POST', `/api/organizations/${member.org.slug}/pages`, {
        token: member.token,
        body: { title: 'bare' },
      });
      const bareUrl = `${stack.api.url}/api/organizations/${member.org.slug}/pages/${bare.body.id}`;
      const bareTimes: number[] = [];
      const confirmTimes: number[] = [];
      for (let i = 0; i < WRITES; i++) {
        const begun = performance.now();
        const res = await fetch(bareUrl, {
          method: 'PATCH',
          headers,
          body: JSON.stringify({ content: `${i}` }),
        });
        await res.arrayBuffer();
        bareTimes.push(performance.now() - begun);

        const started = performance.now();
        const { txId } = await sync.update(pageEntity, id, { content: `${i}` });
        await sync.waitFor(txId, ['confirmed']);
        confirmTimes.push(performance.now() - started);
      }
      const figures = { bare: median(bareTimes), confirmed: median(confirmTimes) };
      console.log(`update → confirmed, medians: ${JSON.stringify(figures)} (ms)`);
      expect(figures.confirmed).toBeLessThanOrEqual(150 + 4 * figures.bare);
    } finally {
      await sync.close();
    }
  });
});

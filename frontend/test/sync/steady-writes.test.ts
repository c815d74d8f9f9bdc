/**
 * The library keeps up with a steady stream of writes: at 50 creates a second, each one's
 * write → `confirmed` stays bounded instead of growing with the outbox (a backlog: every
 * write waiting behind the work the earlier ones caused). The yardstick is the bare POST at
 * the same rate, measured in the same test, because the machine may be shared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newDevice,
  openClient,
  pageEntity,
  startTestStack,
  statusCounts,
  type TestStack,
  until,
} from './support/sync-stack.ts';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ cdc: true });
});
afterAll(async () => {
  await stack?.stop();
});

const RATE = 50;
const EXISTING = Number(process.env.STEADY_EXISTING ?? 2000);
const percentile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** Runs `write` RATE times a second, `count` times; each write's latency in ms, sorted. */
async function atRate(count: number, write: () => Promise<void>): Promise<number[]> {
  const started = performance.now();
  const latencies: Promise<number>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / RATE;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    const begun = performance.now();
    latencies.push(write().then(() => performance.now() - begun));
  }
  return (await Promise.all(latencies)).sort((a, b) => a - b);
}

describe('steady writes', () => {
  it('confirms 300 creates made at 50/s, each within 1 s plus 10x the bare POST at that rate (p90)', async () => {
    const member = await stack.client.newMember();
    const headers = { authorization: `Bearer ${member.token}`, 'content-type': 'application/json' };
    // an organization with rows already: what each recompute and each re-read goes over
    const pages = `${stack.api.url}/api/organizations/${member.org.slug}/pages`;
    for (let i = 0; i < EXISTING; i += 10)
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await fetch(pages, {
            method: 'POST',
            headers,
            body: JSON.stringify({ title: 'existing' }),
          });
          await res.arrayBuffer();
        }),
      );
    const bare = await atRate(100, async () => {
      const res = await fetch(`${stack.api.url}/api/organizations/${member.org.slug}/pages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ title: 'bare' }),
      });
      await res.arrayBuffer();
    });

    const sync = openClient(stack, member, { device: newDevice() });
    try {
      await sync.ready;
      await until(() => sync.items(pageEntity).length === EXISTING + 100, 30_000, 'existing rows synced');
      const confirmed = await atRate(300, async () => {
        const { txId } = await sync.create(pageEntity, { title: 'steady' });
        await sync.waitFor(txId, ['confirmed'], 60_000);
      });
      const figures = {
        bare: { p50: percentile(bare, 0.5), p90: percentile(bare, 0.9) },
        confirmed: { p50: percentile(confirmed, 0.5), p90: percentile(confirmed, 0.9) },
      };
      console.log(`write → confirmed at 50/s: ${JSON.stringify(figures)} (ms)`, statusCounts(sync));
      // a backlog grows with every write: the later ones take seconds, far past the bound
      expect(figures.confirmed.p90).toBeLessThanOrEqual(1_000 + 10 * figures.bare.p90);
    } finally {
      await sync.close();
    }
  });
});

/**
 * A TRUNCATE of a tracked table is not silent: counts drop to 0 at once, each organization's
 * feed shows a `page.truncated` activity, and a live shape client (the official Electric client)
 * is told to refetch and ends up with the rows the table has, not the ones it had.
 */
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
const controllers: AbortController[] = [];

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 2_000 } });
  sql = postgres(stack.cluster.url, { onnotice: () => {}, max: 2 });
});
afterAll(async () => {
  for (const controller of controllers) controller.abort();
  await sql?.end();
  await stack?.stop();
});

const get = (path: string, m: Member) => stack.client.request('GET', path, { token: m.token });

async function createPages(m: Member, n: number): Promise<string[]> {
  const txs: string[] = [];
  for (let i = 0; i < n; i++) {
    const tx = txId('tx-trunc');
    const res = await stack.client.request('POST', `${orgPath(m)}/pages`, {
      token: m.token,
      body: { title: `page ${i}` },
      headers: { 'x-transaction-id': tx },
    });
    expect(res.status).toBe(201);
    txs.push(tx);
  }
  return txs;
}

async function eventually<T>(probe: () => Promise<T | null | false>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function liveShape(m: Member, liveSse = false): Shape<Row> {
  const controller = new AbortController();
  controllers.push(controller);
  return new Shape(
    new ShapeStream<Row>({
      url: `${stack.api.url}${orgPath(m)}/shapes/pages`,
      headers: { authorization: `Bearer ${m.token}` },
      signal: controller.signal,
      ...(liveSse ? { liveSse: true } : {}),
    }),
  );
}

it('makes counts, the activity feed and live shapes agree with the table after a TRUNCATE', async () => {
  const alice = await stack.client.newMember();
  const bob = await stack.client.newMember();
  const aliceTxs = await createPages(alice, 3);
  await createPages(bob, 2);
  const lastTx = aliceTxs.at(-1) as string;
  await eventually(
    async () => (await get(`${orgPath(alice)}/transactions/${lastTx}`, alice)).status === 200,
    'the last create',
  );

  const longPoll = liveShape(alice);
  const sse = liveShape(alice, true);
  await eventually(
    async () => (await longPoll.rows).length === 3 && (await sse.rows).length === 3,
    'the shapes',
  );
  expect((await get(`${orgPath(alice)}/counts`, alice)).body.counts.page).toBe(3);

  await sql`truncate pages cascade`;

  for (const m of [alice, bob]) {
    await eventually(
      async () => (await get(`${orgPath(m)}/counts`, m)).body.counts.page === 0,
      'counts of 0',
    );
    const feed = await get(`${orgPath(m)}/activities?action=truncate`, m);
    expect(feed.body.items).toEqual([
      expect.objectContaining({
        type: 'page.truncated',
        action: 'truncate',
        entityType: 'page',
        entityId: '*',
        organizationId: m.org.id,
        transactionId: null,
      }),
    ]);
  }
  // the live clients are told to refetch and hold exactly the table's rows
  await eventually(
    () => Promise.resolve(longPoll.currentRows.length === 0 && sse.currentRows.length === 0),
    'empty shapes',
  );

  const [afterTx] = await createPages(alice, 1);
  await eventually(
    () =>
      Promise.resolve(
        [longPoll, sse].every(
          (shape) =>
            shape.currentRows.length === 1 &&
            (shape.currentRows[0]?.transactions as { insert?: string })?.insert === afterTx,
        ),
      ),
    'the shapes to show the page written after the truncation',
  );
  expect((await get(`${orgPath(alice)}/counts`, alice)).body.counts.page).toBe(1);
});

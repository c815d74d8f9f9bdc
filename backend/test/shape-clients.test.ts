/**
 * Today's Electric clients against our shape endpoint: the latest `@electric-sql/client` and
 * TanStack DB's electric collection (`awaitTxId`, `awaitMatch`, on-demand subset snapshots).
 */
import { Shape as PinnedShape, ShapeStream as PinnedShapeStream } from '@electric-sql/client';
import { type Row, Shape, ShapeStream } from '@electric-sql/client-latest';
import { parseActivityId } from '@sync/db/lsn';
import { trackedPages } from '@sync/db/tracked-tables';
import { createCollection, createLiveQueryCollection, eq } from '@tanstack/db';
import { electricCollectionOptions, isChangeMessage } from '@tanstack/electric-db-collection';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allColumns } from '../src/modules/shapes/shape-columns.ts';
import { readLogPage } from '../src/modules/shapes/shape-operations.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId, waitForActivity } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;
const controllers: AbortController[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 3_000 } });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
  alice = await stack.client.newMember();
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const controller of controllers) controller.abort();
  await sql?.end();
  await stack?.stop();
});

const shapeUrl = (m: Member, entity = 'pages') => `${stack.api.url}${orgPath(m)}/shapes/${entity}`;
const auth = (m: Member) => ({ authorization: `Bearer ${m.token}` });

function createPage(m: Member, body: Record<string, unknown>, transactionId = txId('tx-client')) {
  return stack.client.request('POST', `${orgPath(m)}/pages`, {
    token: m.token,
    body,
    headers: { 'x-transaction-id': transactionId },
  });
}

/** The X-Txid of a write, as an electric collection's mutation handler returns it. */
function txidOf(res: { headers: Headers }): number {
  const header = res.headers.get('x-txid');
  if (header === null) throw new Error('the write answered no X-Txid');
  return Number(header);
}

async function get(m: Member, query: string) {
  const res = await fetch(`${shapeUrl(m)}?${query}`, { headers: auth(m) });
  return { res, body: await res.json() };
}

interface OpenedShape {
  rows(): Promise<Row[]>;
  currentRows(): Row[];
  fetchSnapshot(opts: { where: string; params: Record<string, string> }): Promise<{
    metadata: { xmax: string };
    data: { value: Row }[];
  }>;
}
type StreamOptions = ConstructorParameters<typeof ShapeStream<Row>>[0];

describe('both clients: the pinned 1.5.12 and the latest', () => {
  const clients: { name: string; open: (options: StreamOptions) => OpenedShape }[] = [
    {
      name: 'pinned',
      open: (options) => {
        const stream = new PinnedShapeStream<Row>(options);
        const shape = new PinnedShape(stream);
        return {
          rows: () => shape.rows,
          currentRows: () => shape.currentRows,
          fetchSnapshot: (o) => stream.fetchSnapshot(o),
        };
      },
    },
    {
      name: 'latest',
      open: (options) => {
        const stream = new ShapeStream<Row>(options);
        const shape = new Shape(stream);
        return {
          rows: () => shape.rows,
          currentRows: () => shape.currentRows,
          fetchSnapshot: (o) => stream.fetchSnapshot(o),
        };
      },
    },
  ];
  for (const client of clients) {
    for (const liveSse of [false, true]) {
      it(`${client.name}: initial sync, then live changes over ${liveSse ? 'SSE' : 'long-poll'}`, async () => {
        const m = await stack.client.newMember();
        await createPage(m, { title: 'first' });
        const controller = new AbortController();
        controllers.push(controller);
        const shape = client.open({ url: shapeUrl(m), headers: auth(m), signal: controller.signal, liveSse });
        expect((await shape.rows()).map((r) => r.title)).toEqual(['first']);
        await createPage(m, { title: 'second' });
        const deadline = Date.now() + 10_000;
        while (shape.currentRows().length < 2 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        expect(
          shape
            .currentRows()
            .map((r) => r.title)
            .sort(),
        ).toEqual(['first', 'second']);
        // the live answer carried no electric-schema: the client parsed it by the first one's
        const second = shape.currentRows().find((r) => r.title === 'second');
        expect(second?.transactions).toEqual(expect.objectContaining({ insert: expect.any(String) }));
      });
    }
    it(`${client.name}: fetchSnapshot gets { metadata, data }`, async () => {
      const m = await stack.client.newMember();
      for (const title of ['one', 'two']) await createPage(m, { title });
      const controller = new AbortController();
      controllers.push(controller);
      const shape = client.open({
        url: shapeUrl(m),
        headers: auth(m),
        log: 'changes_only',
        signal: controller.signal,
      });
      const { metadata, data } = await shape.fetchSnapshot({ where: '"title" = $1', params: { '1': 'two' } });
      expect(data.map((message) => message.value.title)).toEqual(['two']);
      expect(metadata.xmax).toMatch(/^\d+$/);
    });
  }
});

describe('X-Txid: the PostgreSQL transaction id of every tracked write', () => {
  it('answers the xid that wrote the row on create, update, delete and undo, and none on a replay', async () => {
    const transactionId = txId('tx-client');
    const created = await createPage(alice, { title: 'xid' }, transactionId);
    expect(created.status).toBe(201);
    const [row] = await sql`select xmin::text as xmin from pages where id = ${created.body.id}`;
    expect(created.headers.get('x-txid')).toBe(row?.xmin);

    const path = `${orgPath(alice)}/pages/${created.body.id}`;
    const updated = await stack.client.request('PATCH', path, { token: alice.token, body: { title: 'x2' } });
    const [after] = await sql`select xmin::text as xmin from pages where id = ${created.body.id}`;
    expect(updated.headers.get('x-txid')).toBe(after?.xmin);
    expect(updated.headers.get('x-txid')).not.toBe(created.headers.get('x-txid'));

    const deleted = await stack.client.request('DELETE', path, { token: alice.token });
    expect(deleted.headers.get('x-txid')).toMatch(/^\d+$/);

    const undone = await stack.client.request(
      'POST',
      `${orgPath(alice)}/transactions/${deleted.headers.get('x-transaction-id')}/undo`,
      { token: alice.token, headers: { 'x-transaction-id': txId('tx-undo') } },
    );
    expect(undone.status).toBe(200);
    const [restored] = await sql`select xmin::text as xmin from pages where id = ${created.body.id}`;
    expect(undone.headers.get('x-txid')).toBe(restored?.xmin);

    const replay = await createPage(alice, { title: 'xid' }, transactionId);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');
    expect(replay.headers.get('x-txid')).toBeNull();
  });

  it('is the xid that the shape stream carries in headers.txids', async () => {
    const created = await createPage(alice, { title: 'txids' });
    const controller = new AbortController();
    controllers.push(controller);
    const stream = new ShapeStream<Row>({
      url: shapeUrl(alice),
      headers: auth(alice),
      signal: controller.signal,
    });
    const txids: number[] = [];
    stream.subscribe((messages) => {
      for (const m of messages) if (isChangeMessage(m)) txids.push(...(m.headers.txids ?? []));
    });
    const updated = await stack.client.request('PATCH', `${orgPath(alice)}/pages/${created.body.id}`, {
      token: alice.token,
      body: { title: 'txids 2' },
    });
    const txid = Number(updated.headers.get('x-txid'));
    const deadline = Date.now() + 10_000;
    while (!txids.includes(txid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(txids).toContain(txid);
  });

  it('is documented in the OpenAPI document', async () => {
    const res = await fetch(`${stack.api.url}/api/openapi.json`);
    const spec = await res.json();
    const create = spec.paths['/api/organizations/{org}/pages'].post.responses['201'];
    expect(create.headers['X-Txid'].description).toContain('awaitTxId');
  });
});

describe('snapshots for awaitTxId', () => {
  it('ends the initial snapshot with snapshot-end, in which an earlier write is visible', async () => {
    const created = await createPage(alice, { title: 'before the snapshot' });
    const txid = BigInt(created.headers.get('x-txid') ?? '');
    const { body } = await get(alice, 'offset=-1&log=full');
    const end = body.at(-2);
    expect(end.headers.control).toBe('snapshot-end');
    const xmin = BigInt(end.headers.xmin);
    const xmax = BigInt(end.headers.xmax);
    const xip = (end.headers.xip_list as string[]).map(BigInt);
    expect(txid < xmin || (txid < xmax && !xip.includes(txid))).toBe(true);
    expect(body.at(-1).headers.control).toBe('up-to-date');
  });
});

describe('log=changes_only and offset=now', () => {
  it('sends no snapshot rows for changes_only, only up-to-date at the current position', async () => {
    await createPage(alice, { title: 'not in a changes_only response' });
    const { res, body } = await get(alice, 'offset=-1&log=changes_only');
    expect(res.status).toBe(200);
    expect(body).toEqual([{ headers: { control: 'up-to-date', global_last_seen_lsn: expect.any(String) } }]);
    expect(res.headers.get('electric-handle')).toMatch(/^page-/);
    expect(res.headers.get('electric-offset')).toMatch(/^\d+_\d+$/);
  });

  it('answers offset=now without a handle in one round trip, with the handle', async () => {
    const { res, body } = await get(alice, 'offset=now&log=changes_only');
    expect(res.status).toBe(200);
    expect(res.headers.get('electric-handle')).toMatch(/^page-/);
    expect(body.at(-1).headers.control).toBe('up-to-date');
  });

  it('still answers 409 to offset=now with a handle of another log', async () => {
    const { res } = await get(alice, 'offset=now&handle=page-other-1');
    expect(res.status).toBe(409);
  });

  it('streams only later changes to the latest client in changes_only mode', async () => {
    const old = txId('tx-client');
    await createPage(alice, { title: 'old row' }, old);
    // `now` is the head of the activity log: a write the CDC worker has not logged yet would still come
    await waitForActivity(sql, old);
    const stream = new ShapeStream<Row>({
      url: shapeUrl(alice),
      headers: auth(alice),
      log: 'changes_only',
      offset: 'now',
    });
    const received: any[] = [];
    stream.subscribe((messages) => {
      received.push(...messages);
    });
    cleanups.push(() => stream.unsubscribeAll());
    const deadline = Date.now() + 10_000;
    while (!stream.isUpToDate && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const transactionId = txId('tx-client');
    await createPage(alice, { title: 'new row' }, transactionId);
    while (!received.some((m) => m.value?.transactions?.insert === transactionId) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const rows = received.filter((m) => m.key);
    expect(rows.map((m) => m.value.title)).toEqual(['new row']);
  });
});

describe('subset snapshots (fetchSnapshot, on-demand collections)', () => {
  let member: Member;
  beforeAll(async () => {
    member = await stack.client.newMember();
    for (const title of ['apple', 'banana', 'cherry', 'date']) await createPage(member, { title });
    const other = await stack.client.newMember();
    await createPage(other, { title: 'apple' });
  });

  it('answers { metadata, data } filtered, ordered and limited as asked, within the organization', async () => {
    const stream = new ShapeStream<Row>({
      url: shapeUrl(member),
      headers: auth(member),
      log: 'changes_only',
      offset: 'now',
    });
    const { metadata, data } = await stream.fetchSnapshot({
      where: '"title" <> $1 AND ("title" LIKE $2 OR "title" = ANY($3))',
      params: { '1': 'banana', '2': '%a%', '3': '{cherry}' },
      orderBy: '"title" DESC',
      limit: 2,
    });
    expect(data.map((m) => m.value.title)).toEqual(['date', 'cherry']);
    expect(data.every((m) => m.value.organization_id === member.org.id)).toBe(true);
    expect(metadata).toMatchObject({
      snapshot_mark: expect.any(Number),
      database_lsn: expect.stringMatching(/^\d+$/),
      xmin: expect.stringMatching(/^\d+$/),
      xmax: expect.stringMatching(/^\d+$/),
      xip_list: expect.any(Array),
    });
  });

  it('never lets a where clause reach another organization or another column', async () => {
    const attempts: [string, Record<string, string>][] = [
      ['"organization_id" <> $1', { '1': member.org.id }],
      ['true OR true', {}],
      ['"title" = $1 OR 1 = 1', { '1': 'x' }],
    ];
    for (const [where, params] of attempts) {
      const query = new URLSearchParams({
        offset: '-1',
        subset__where: where,
        subset__params: JSON.stringify(params),
      });
      const { res, body } = await get(member, query.toString());
      expect(res.status, where).toBe(200);
      for (const m of body.data) expect(m.value.organization_id, where).toBe(member.org.id);
    }
  });

  it('answers 400 with the error JSON to clauses outside the grammar, never 5xx', async () => {
    const bad: Record<string, string>[] = [
      { subset__where: '"password_hash" = $1', subset__params: '{"1":"x"}' },
      { subset__where: 'title = 1; drop table pages' },
      { subset__where: "pg_sleep(10) = ''" },
      { subset__where: '"title" = $2', subset__params: '{"1":"x"}' },
      { subset__where: '(((("title" = $1', subset__params: '{"1":"x"}' },
      { subset__where: '"created_at" > $1', subset__params: '{"1":"not a time"}' },
      { subset__where: '"title"' },
      { subset__where: `${'NOT '.repeat(100)}true` },
      { subset__params: 'not json' },
      { subset__order_by: 'random()' },
      { subset__order_by: '"title" sideways' },
      { subset__limit: '-1' },
      { subset__limit: '1e9' },
      { subset__offset: 'x' },
    ];
    for (const params of bad) {
      const { res, body } = await get(member, new URLSearchParams({ offset: '-1', ...params }).toString());
      expect(res.status, JSON.stringify(params)).toBe(400);
      expect(body, JSON.stringify(params)).toMatchObject({
        error: 'bad_request',
        code: 'VALIDATION_FAILED',
        message: expect.any(String),
      });
    }
  });

  it('answers a subset request sent as POST with a 404 error, which the client surfaces', async () => {
    const res = await fetch(`${shapeUrl(member)}?offset=-1`, {
      method: 'POST',
      headers: { ...auth(member), 'content-type': 'application/json' },
      body: JSON.stringify({ where: '"title" = $1', params: { '1': 'apple' } }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('orders by a column as its type, not as its text', async () => {
    for (const size of [9, 10, 100]) {
      await stack.client.request('POST', `${orgPath(member)}/attachments`, {
        token: member.token,
        body: { filename: `f${size}`, contentType: 'text/plain', size, url: 'https://example.com/f' },
      });
    }
    const query = new URLSearchParams({ offset: '-1', subset__order_by: '"size" DESC', subset__limit: '3' });
    const res = await fetch(`${shapeUrl(member, 'attachments')}?${query}`, { headers: auth(member) });
    const body = await res.json();
    expect(body.data.map((m: any) => m.value.size)).toEqual(['100', '10', '9']);
  });

  it('compares typed columns as their type', async () => {
    const query = new URLSearchParams({
      offset: '-1',
      subset__where: '"created_at" > $1 AND "deleted_at" IS NULL',
      subset__params: JSON.stringify({ '1': '2000-01-01T00:00:00Z' }),
    });
    const { res, body } = await get(member, query.toString());
    expect(res.status).toBe(200);
    expect(body.data).toHaveLength(4);
  });
});

describe('TanStack DB electric collection', () => {
  interface PageRow extends Row<unknown> {
    id: string;
    title: string;
  }

  function pagesCollection(m: Member, syncMode: 'eager' | 'on-demand', confirm: 'txid' | 'match') {
    const collection = createCollection(
      electricCollectionOptions<PageRow>({
        id: `pages-${syncMode}-${confirm}-${Math.random()}`,
        syncMode,
        shapeOptions: { url: shapeUrl(m), headers: auth(m) },
        getKey: (row) => row.id,
        onInsert: async ({ transaction, collection: self }) => {
          const row = transaction.mutations[0].modified;
          const res = await createPage(m, { id: row.id, title: row.title });
          if (confirm === 'txid') return { txid: txidOf(res) };
          await self.utils.awaitMatch(
            (message) => isChangeMessage(message) && message.value.id === row.id,
            10_000,
          );
        },
        onUpdate: async ({ transaction, collection: self }) => {
          const mutation = transaction.mutations[0];
          const res = await stack.client.request('PATCH', `${orgPath(m)}/pages/${mutation.key}`, {
            token: m.token,
            body: { title: mutation.changes.title },
          });
          if (confirm === 'txid') return { txid: txidOf(res) };
          await self.utils.awaitMatch(
            (message) =>
              isChangeMessage(message) &&
              message.headers.operation === 'update' &&
              message.value.id === mutation.key,
            10_000,
          );
        },
        onDelete: async ({ transaction, collection: self }) => {
          const mutation = transaction.mutations[0];
          const res = await stack.client.request('DELETE', `${orgPath(m)}/pages/${mutation.key}`, {
            token: m.token,
          });
          if (confirm === 'txid') return { txid: txidOf(res) };
          await self.utils.awaitMatch(
            (message) =>
              isChangeMessage(message) &&
              message.headers.operation === 'delete' &&
              message.value.id === mutation.key,
            10_000,
          );
        },
      }),
    );
    cleanups.push(() => collection.cleanup());
    return collection;
  }

  for (const confirm of ['txid', 'match'] as const) {
    it(`confirms optimistic insert, update and delete by ${confirm === 'txid' ? 'awaitTxId' : 'awaitMatch'}`, async () => {
      const m = await stack.client.newMember();
      const existingTx = txId('tx-client');
      const existing = await createPage(m, { title: 'existing' }, existingTx);
      await waitForActivity(sql, existingTx); // so it reaches the collection in the snapshot, not the log
      const pages = pagesCollection(m, 'eager', confirm);
      await pages.preload();
      expect([...pages.values()].map((p) => p.title)).toEqual(['existing']);
      // a write that arrived inside the snapshot settles through its snapshot-end
      await expect(pages.utils.awaitTxId(txidOf(existing), 2_000)).resolves.toBe(true);

      const id = `tanstack-${Math.random().toString(36).slice(2, 10)}`;
      const insert = pages.insert({ id, title: 'optimistic' } as PageRow);
      expect(pages.get(id)?.title).toBe('optimistic');
      await insert.isPersisted.promise;
      expect(pages.get(id)).toMatchObject({ title: 'optimistic', organization_id: m.org.id });

      const update = pages.update(id, (draft) => {
        draft.title = 'renamed';
      });
      await update.isPersisted.promise;
      expect(pages.get(id)?.title).toBe('renamed');

      const remove = pages.delete(id);
      await remove.isPersisted.promise;
      expect(pages.get(id)).toBeUndefined();
      const rest = await stack.client.request('GET', `${orgPath(m)}/pages`, { token: m.token });
      expect(rest.body.items.map((p: any) => p.title)).toEqual(['existing']);
    });
  }

  it('loads an on-demand collection through a subset snapshot for a live query', async () => {
    const m = await stack.client.newMember();
    for (const title of ['red', 'green', 'blue']) await createPage(m, { title });
    const pages = pagesCollection(m, 'on-demand', 'txid');
    const green = createLiveQueryCollection((q) =>
      q.from({ page: pages }).where(({ page }) => eq(page.title, 'green')),
    );
    cleanups.push(() => green.cleanup());
    await green.preload();
    const deadline = Date.now() + 10_000;
    while (green.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect([...green.values()].map((p) => p.title)).toEqual(['green']);

    const id = `tanstack-${Math.random().toString(36).slice(2, 10)}`;
    const insert = pages.insert({ id, title: 'green' } as PageRow);
    await insert.isPersisted.promise;
    expect(green.size).toBe(2);
  });
});

describe('cacheable live responses (a CDN collapses identical requests)', () => {
  it('answers two identical live requests with byte-identical bodies and Electric cache headers', async () => {
    const m = await stack.client.newMember();
    const first = await get(m, 'offset=-1&log=full');
    expect(first.res.headers.get('cache-control')).toBe('private, no-store');
    const handle = first.res.headers.get('electric-handle') ?? '';
    const offset = first.res.headers.get('electric-offset') ?? '';
    const url = `${shapeUrl(m)}?${new URLSearchParams({ cursor: '', handle, live: 'true', log: 'full', offset })}`;
    const requests = [fetch(url, { headers: auth(m) }), fetch(url, { headers: auth(m) })];
    await new Promise((r) => setTimeout(r, 200));
    await createPage(m, { title: 'seen by both' });
    const [a, b] = await Promise.all(requests);
    const [bodyA, bodyB] = await Promise.all([a!.text(), b!.text()]);
    expect(bodyA).toContain('seen by both');
    expect(bodyB).toBe(bodyA);
    for (const res of [a!, b!]) {
      expect(res.headers.get('cache-control')).toBe('public, max-age=5, stale-while-revalidate=5');
      expect(res.headers.get('vary')).toMatch(/^authorization, cookie/);
      expect(res.headers.get('electric-offset')).toBe(a!.headers.get('electric-offset'));
    }
    // the same request again (what a cache would be asked) gets the same bytes from the server too
    const again = await fetch(url, { headers: auth(m) });
    expect(await again.text()).toBe(bodyA);
  });
});

describe('waking live requests after a change', () => {
  it('answers every waiting live request together, while identical reads are in flight', async () => {
    const m = await stack.client.newMember();
    const first = await get(m, 'offset=-1&log=full');
    const handle = first.res.headers.get('electric-handle') ?? '';
    const offset = first.res.headers.get('electric-offset') ?? '';
    const at = new URLSearchParams({ handle, log: 'full', offset });
    // non-live catch-up requests at the same offset keep the same log read in flight
    let hammering = true;
    const hammers = Array.from({ length: 4 }, async () => {
      while (hammering) await (await fetch(`${shapeUrl(m)}?${at}`, { headers: auth(m) })).arrayBuffer();
    });
    const live = `${shapeUrl(m)}?${at}&cursor=&live=true`;
    const waiters = Array.from({ length: 20 }, () =>
      fetch(live, { headers: auth(m) }).then(async (res) => ({ body: await res.text(), at: Date.now() })),
    );
    await new Promise((r) => setTimeout(r, 300));
    await createPage(m, { title: 'wakes everyone' });
    const answers = await Promise.all(waiters);
    hammering = false;
    await Promise.all(hammers);
    for (const answer of answers) expect(answer.body).toContain('wakes everyone');
    const times = answers.map((answer) => answer.at);
    // a request that shared a read started before the change would sleep until its 2 s recheck
    expect(Math.max(...times) - Math.min(...times)).toBeLessThan(1_000);
  });

  it('does not let a live request share a read that started before a change it was not woken for', async () => {
    const m = await stack.client.newMember();
    const first = await get(m, 'offset=-1&log=full');
    const handle = first.res.headers.get('electric-handle') ?? '';
    const offset = first.res.headers.get('electric-offset') ?? '';
    // a read of the same page that takes its snapshot now and answers 2 s later: `activities`
    // resolves, for this connection only, to a view that sleeps before it reads
    await sql.unsafe(`create schema if not exists slow_reads;
      create or replace view slow_reads.activities as
        select * from public.activities where (select true from pg_sleep(2))`);
    const slowSql = postgres(stack.cluster.url, {
      onnotice: () => {},
      connection: { search_path: 'slow_reads, public' },
    });
    cleanups.push(() => slowSql.end());
    const pages = trackedPages;
    if (!pages) throw new Error('pages is not a tracked table');
    // another organization's live request: the API's LISTEN is up (it starts with the first waiter)
    const other = await stack.client.newMember();
    const listening = new AbortController();
    const otherLive = fetch(`${shapeUrl(other)}?offset=now&live=true`, {
      headers: auth(other),
      signal: listening.signal,
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const slowRead = readLogPage(slowSql, m.org.id, pages, allColumns(pages), parseActivityId(offset), 1_000);
    await new Promise((r) => setTimeout(r, 100)); // its snapshot is taken
    const transactionId = txId('tx-behind-read');
    await createPage(m, { title: 'committed during the slow read' }, transactionId);
    await waitForActivity(sql, transactionId);
    await new Promise((r) => setTimeout(r, 100)); // the API has its NOTIFY
    const started = Date.now();
    const res = await fetch(
      `${shapeUrl(m)}?${new URLSearchParams({ cursor: '', handle, live: 'true', offset })}`,
      {
        headers: auth(m),
      },
    );
    expect(await res.text()).toContain('committed during the slow read');
    // sharing the slow read would answer its empty page, then sleep until the 2 s recheck
    expect(Date.now() - started).toBeLessThan(1_500);
    expect((await slowRead)?.changes).toEqual([]);
    listening.abort();
    await otherLive;
  });
});

/**
 * The `columns` parameter, as the official clients (pinned 1.5.12 and latest 1.5.28) send it:
 * every row of the shape carries only those columns (snapshot chunks, subset snapshots, the
 * log over long-poll and SSE, `electric-schema`), an update that changed none of them is not
 * sent, a narrowed shape has its own handle and its own held snapshot, and a column that is not
 * the entity's own, or a set without the primary key, is a 400 the client surfaces.
 */
import {
  FetchError as PinnedFetchError,
  Shape as PinnedShape,
  ShapeStream as PinnedShapeStream,
} from '@electric-sql/client';
import { FetchError, type Row, Shape, ShapeStream } from '@electric-sql/client-latest';
import { trackedPages } from '@sync/db/tracked-tables';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnsParam, parseColumnNames, parseShapeColumns } from '../src/modules/shapes/shape-columns.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId, waitForActivity } from './support/contract.ts';

const CHUNK = 1_000;
const ROWS = 2_500; // chunks of 1,000, 1,000 and 500 rows
let stack: TestStack;
let sql: postgres.Sql;
const controllers: AbortController[] = [];

beforeAll(async () => {
  stack = await startTestStack({
    cdc: true,
    // long enough that a request waiting for nothing is told from one answered at once
    config: { shapeLongPollMs: 6_000, shapeSnapshotChunkRows: CHUNK },
  });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
});
afterAll(async () => {
  for (const controller of controllers) controller.abort();
  await sql?.end();
  await stack?.stop();
});

const shapeUrl = (m: Member) => `${stack.api.url}${orgPath(m)}/shapes/pages`;
const auth = (m: Member) => ({ authorization: `Bearer ${m.token}` });
const TITLE_ONLY = ['id', 'title'];
/** What the official client sends for `columns: ['id', 'title']`. */
const TITLE_ONLY_PARAM = '"id","title"';

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out: ${what}`);
}

async function write(m: Member, method: string, path: string, body?: unknown): Promise<string> {
  const transactionId = txId('tx-columns');
  const res = await stack.client.request(method, `${orgPath(m)}/pages${path}`, {
    token: m.token,
    body,
    headers: { 'x-transaction-id': transactionId },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  await waitForActivity(sql, transactionId);
  return res.body?.id ?? '';
}

interface RawResponse {
  status: number;
  handle: string;
  offset: string;
  schema: string | null;
  upToDate: boolean;
  body: any;
  text: string;
}

async function getShape(m: Member, params: Record<string, string>): Promise<RawResponse> {
  const res = await fetch(`${shapeUrl(m)}?${new URLSearchParams(params)}`, { headers: auth(m) });
  const text = await res.text();
  return {
    status: res.status,
    handle: res.headers.get('electric-handle') ?? '',
    offset: res.headers.get('electric-offset') ?? '',
    schema: res.headers.get('electric-schema'),
    upToDate: res.headers.has('electric-up-to-date'),
    body: JSON.parse(text),
    text,
  };
}

/** Every chunk of a snapshot, from offset -1 to up-to-date. */
async function readSnapshot(m: Member, columns?: string): Promise<RawResponse[]> {
  const narrowing: Record<string, string> = columns === undefined ? {} : { columns };
  const chunks = [await getShape(m, { offset: '-1', ...narrowing })];
  while (!chunks.at(-1)?.upToDate) {
    const last = chunks.at(-1);
    if (last?.status !== 200) throw new Error(`chunk answered ${last?.status}`);
    chunks.push(await getShape(m, { offset: last.offset, handle: last.handle, ...narrowing }));
  }
  return chunks;
}

const rowsOf = (responses: RawResponse[]) =>
  responses.flatMap((r) => (r.body as any[]).filter((message) => message.key));

async function memberWithPages(rows: number): Promise<Member> {
  const m = await stack.client.newMember();
  await sql`
    insert into pages (id, organization_id, title, content, created_by, transactions)
    select ${m.org.id} || '-' || lpad(i::text, 6, '0'), ${m.org.id}, 'Page ' || i, 'content ' || i,
           ${m.user.id}, jsonb_build_object('insert', 'bulk-tx-' || i, 'update', null, 'delete', null)
    from generate_series(1, ${rows}) as i`;
  await waitUntil(async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from activities where organization_id = ${m.org.id}`;
    return row?.n === rows;
  }, 'the worker logs every row');
  return m;
}

async function chunkReads(): Promise<{ cached: number }> {
  const text = await (await fetch(`${stack.api.url}/api/metrics`)).text();
  const cached = text.match(/^shape_snapshot_chunks_total\{read="cached"\} (\d+)$/m)?.[1];
  return { cached: Number(cached ?? 0) };
}

describe('a narrowed snapshot', () => {
  it('carries only the asked columns in every chunk, its schema header and its handle, all rows included', async () => {
    const m = await memberWithPages(ROWS);
    const chunks = await readSnapshot(m, TITLE_ONLY_PARAM);
    expect(chunks).toHaveLength(3);
    const rows = rowsOf(chunks);
    // without created_at in the set, the chunks still continue after the last row sent
    expect(new Set(rows.map((message) => message.value.id)).size).toBe(ROWS);
    for (const message of rows) expect(Object.keys(message.value)).toEqual(TITLE_ONLY);
    for (const chunk of chunks) {
      expect(JSON.parse(chunk.schema ?? '')).toEqual({
        id: { type: 'text', pk_index: 0, not_null: true },
        title: { type: 'text', not_null: true },
      });
    }
    const full = await readSnapshot(m);
    expect(full[0]?.handle).not.toBe(chunks[0]?.handle);
    expect(Object.keys(JSON.parse(full[0]?.schema ?? ''))).toContain('content');
  });

  it('takes names in any order, bare or quoted, duplicates dropped: one shape, one handle', async () => {
    const m = await memberWithPages(3);
    const [quoted] = await readSnapshot(m, TITLE_ONLY_PARAM);
    const [bare] = await readSnapshot(m, 'TITLE, id,"title"');
    expect(bare?.handle).toBe(quoted?.handle);
    expect(bare?.text).toBe(quoted?.text);
    // naming every column is the full row
    const everyColumn = Object.keys(JSON.parse((await readSnapshot(m))[0]?.schema ?? ''));
    const [all] = await readSnapshot(m, everyColumn.join(','));
    const [none] = await readSnapshot(m);
    expect(all?.handle).toBe(none?.handle);
  });

  it('keeps each column set its own held snapshot: a second client gets its own set, held', async () => {
    const m = await memberWithPages(ROWS);
    const full = await readSnapshot(m);
    const before = await chunkReads();
    const narrowed = await readSnapshot(m, TITLE_ONLY_PARAM);
    expect((await chunkReads()).cached - before.cached).toBe(0);
    for (const message of rowsOf(narrowed)) expect(Object.keys(message.value)).toEqual(TITLE_ONLY);
    const again = await readSnapshot(m, TITLE_ONLY_PARAM);
    expect((await chunkReads()).cached - before.cached).toBe(3);
    expect(again.map((c) => c.text)).toEqual(narrowed.map((c) => c.text));
    const fullAgain = await readSnapshot(m);
    expect(fullAgain.map((c) => c.text)).toEqual(full.map((c) => c.text));
    expect(Object.keys(rowsOf(fullAgain)[0]?.value ?? {})).toContain('content');
  });

  it("answers 409 must-refetch to a request that brings another column set's handle", async () => {
    const m = await memberWithPages(3);
    const [full] = await readSnapshot(m);
    const [narrowed] = await readSnapshot(m, TITLE_ONLY_PARAM);
    for (const [handle, offset, columns] of [
      [full?.handle, full?.offset, TITLE_ONLY_PARAM],
      [narrowed?.handle, narrowed?.offset, undefined],
    ] as const) {
      const res = await getShape(m, {
        offset: offset ?? '',
        handle: handle ?? '',
        ...(columns ? { columns } : {}),
      });
      expect(res.status).toBe(409);
      expect(res.handle).not.toBe(handle);
    }
  });

  it('narrows a subset snapshot too', async () => {
    const m = await memberWithPages(3);
    const res = await getShape(m, {
      offset: '-1',
      columns: TITLE_ONLY_PARAM,
      subset__where: '"content" = $1',
      subset__params: JSON.stringify({ '1': 'content 2' }),
    });
    expect(res.status).toBe(200);
    expect(res.body.data.map((message: any) => message.value)).toEqual([
      { id: `${m.org.id}-000002`, title: 'Page 2' },
    ]);
    expect(Object.keys(JSON.parse(res.schema ?? ''))).toEqual(TITLE_ONLY);
  });
});

describe('the narrowed log', () => {
  it('sends inserts, updates and deletes with only the asked columns, and no update that changed none of them', async () => {
    const m = await stack.client.newMember();
    const id = await write(m, 'POST', '', { title: 'before', content: 'first' });
    const [snapshot] = await readSnapshot(m, TITLE_ONLY_PARAM);
    const at = { handle: snapshot?.handle ?? '', columns: TITLE_ONLY_PARAM };
    await write(m, 'PATCH', `/${id}`, { content: 'second' });
    const contentOnly = await getShape(m, { ...at, offset: snapshot?.offset ?? '' });
    expect(contentOnly.body).toEqual([expect.objectContaining({ headers: expect.anything() })]);
    expect(contentOnly.body[0].headers.control).toBe('up-to-date');
    expect(contentOnly.offset).not.toBe(snapshot?.offset);
    // the same change, for a set whose bookkeeping column every write stamps
    const stamped = await getShape(m, {
      offset: snapshot?.offset ?? '',
      columns: 'id,modified_at',
      handle: (await readSnapshot(m, 'id,modified_at'))[0]?.handle ?? '',
    });
    expect(rowsOf([stamped]).map((message) => message.headers.operation)).toEqual(['update']);

    const created = await write(m, 'POST', '', { title: 'new', content: 'new content' });
    await write(m, 'PATCH', `/${id}`, { title: 'after' });
    await write(m, 'DELETE', `/${created}`);
    const log = await getShape(m, { ...at, offset: contentOnly.offset });
    expect(rowsOf([log]).map((message) => [message.headers.operation, message.value])).toEqual([
      ['insert', { id: created, title: 'new' }],
      ['update', { id, title: 'after' }],
      ['delete', { id: created, title: 'new' }],
    ]);
  });

  it('answers a live request at once when a whole page of the log holds no change of the set', async () => {
    const m = await memberWithPages(1_200);
    const snapshot = (await readSnapshot(m, TITLE_ONLY_PARAM)).at(-1);
    await sql`update pages set content = content || '!' where organization_id = ${m.org.id}`;
    await waitUntil(async () => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from activities where organization_id = ${m.org.id}`;
      return row?.n === 2_400;
    }, 'the worker logs every update');
    const started = performance.now();
    const live = await getShape(m, {
      offset: snapshot?.offset ?? '',
      handle: snapshot?.handle ?? '',
      columns: TITLE_ONLY_PARAM,
      live: 'true',
    });
    // the first 1,000 entries, none of them sent: more follow, so no wait for a change
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(live.status).toBe(200);
    expect(live.body).toEqual([]);
    expect(live.upToDate).toBe(false);
    const rest = await getShape(m, {
      offset: live.offset,
      handle: snapshot?.handle ?? '',
      columns: TITLE_ONLY_PARAM,
    });
    expect(rest.body.map((message: any) => message.headers.control)).toEqual(['up-to-date']);
  });

  type Client = 'pinned' | 'latest';
  const clients: Client[] = ['pinned', 'latest'];
  for (const client of clients) {
    for (const liveSse of [false, true]) {
      it(`${client}: a narrowed shape follows live inserts, updates and deletes over ${liveSse ? 'SSE' : 'long-poll'}`, async () => {
        const m = await stack.client.newMember();
        const first = await write(m, 'POST', '', { title: 'first', content: 'one' });
        const controller = new AbortController();
        controllers.push(controller);
        const options = {
          url: shapeUrl(m),
          headers: auth(m),
          signal: controller.signal,
          liveSse,
          params: { columns: TITLE_ONLY },
        };
        const operations: string[] = [];
        const onMessages = (messages: ReadonlyArray<{ headers: object; value?: Row }>) => {
          for (const message of messages) {
            if (message.value && 'operation' in message.headers) {
              operations.push(`${message.headers.operation} ${message.value.title}`);
            }
          }
        };
        let shape: { rows: Promise<Row[]>; currentRows: Row[] };
        if (client === 'pinned') {
          const stream = new PinnedShapeStream<Row>(options);
          stream.subscribe(onMessages);
          shape = new PinnedShape(stream);
        } else {
          const stream = new ShapeStream<Row>(options);
          stream.subscribe(onMessages);
          shape = new Shape(stream);
        }
        expect(await shape.rows).toEqual([{ id: first, title: 'first' }]);

        const second = await write(m, 'POST', '', { title: 'second', content: 'two' });
        await write(m, 'PATCH', `/${first}`, { content: 'not in the shape' });
        await write(m, 'PATCH', `/${first}`, { title: 'first, renamed' });
        await write(m, 'DELETE', `/${second}`);
        await waitUntil(() => operations.length === 4, 'the stream brings the three changes', 10_000);
        expect(operations).toEqual([
          'insert first',
          'insert second',
          'update first, renamed',
          'delete second',
        ]);
        expect(shape.currentRows).toEqual([{ id: first, title: 'first, renamed' }]);
      });
    }

    it(`${client}: a column that is not the entity's own, or no primary key, is a 400 the client surfaces`, async () => {
      const m = await stack.client.newMember();
      for (const columns of [['id', 'password_hash'], ['title']]) {
        const controller = new AbortController();
        controllers.push(controller);
        let surfaced: unknown;
        const options = {
          url: shapeUrl(m),
          headers: auth(m),
          signal: controller.signal,
          params: { columns },
          onError: (error: Error) => {
            surfaced = error;
          },
        };
        const stream =
          client === 'pinned' ? new PinnedShapeStream<Row>(options) : new ShapeStream<Row>(options);
        stream.subscribe(() => {});
        await waitUntil(() => surfaced !== undefined, 'the client reports the error', 10_000);
        controller.abort();
        expect(surfaced).toBeInstanceOf(client === 'pinned' ? PinnedFetchError : FetchError);
        const error = surfaced as FetchError;
        expect(error.status).toBe(400);
        expect(error.json).toMatchObject({ error: 'bad_request', code: 'VALIDATION_FAILED' });
        expect((error.json as { message: string }).message).toMatch(
          columns.includes('id') ? /not found on the table: password_hash/ : /primary key column: id/,
        );
      }
    });
  }
});

describe('bad columns', () => {
  it('answers a clear 400 for every malformed list, never a 5xx', async () => {
    const m = await stack.client.newMember();
    const cases = [
      '',
      ',',
      'id,',
      ',id',
      'id,,title',
      'id title',
      '"id',
      '""',
      'id;drop table pages',
      '"id","title") --',
      'id,organization_id,1abc',
      '"ID"',
      'x'.repeat(5_000),
    ];
    for (const columns of cases) {
      for (const offset of ['-1', 'now']) {
        const res = await fetch(`${shapeUrl(m)}?${new URLSearchParams({ offset, columns })}`, {
          headers: auth(m),
        });
        const body = await res.json();
        expect(res.status, columns).toBe(400);
        expect(body, columns).toMatchObject({
          error: 'bad_request',
          code: 'VALIDATION_FAILED',
          message: expect.stringMatching(/^columns: /),
          issues: [{ path: ['columns'], message: expect.any(String) }],
        });
      }
    }
  });
});

describe('parsing a column list', () => {
  it("reads Electric's form: quoted names exact (with doubled quotes), bare names lowercased", () => {
    expect(parseColumnNames('"id","title"')).toEqual(['id', 'title']);
    expect(parseColumnNames(' Id , "Ti,t""le" ,x_1$')).toEqual(['id', 'Ti,t"le', 'x_1$']);
  });

  it('writes a set back as the official client does, and reads it back to the same set', () => {
    const set = parseShapeColumns(trackedPages, 'title,id,modified_at');
    expect(set.names).toEqual(['id', 'modified_at', 'title']);
    expect(columnsParam(set)).toBe('"id","modified_at","title"');
    expect(parseShapeColumns(trackedPages, columnsParam(set))).toEqual(set);
  });
});

/**
 * Chunked initial snapshots: with three rows per chunk, every boundary case is a few rows away.
 * Nothing may be lost or left applied twice at a chunk boundary, when a change lands between
 * chunks, or when a client resumes from a chunk's offset.
 */
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { Shape as LatestShape, ShapeStream as LatestShapeStream } from '@electric-sql/client-latest';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId } from './support/contract.ts';

const CHUNK = 3;
let stack: TestStack;
let sql: postgres.Sql;
const controllers: AbortController[] = [];

beforeAll(async () => {
  stack = await startTestStack({
    cdc: true,
    config: { shapeLongPollMs: 2_000, shapeSnapshotChunkRows: CHUNK },
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

async function createPages(m: Member, count: number, prefix = 'p') {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await stack.client.request('POST', `${orgPath(m)}/pages`, {
      token: m.token,
      body: { title: `${prefix}${i}` },
      headers: { 'x-transaction-id': txId('tx-chunk') },
    });
    ids.push(res.body.id);
  }
  return ids;
}

/** Until the CDC worker has logged `count` activities of the pages `ids`. */
async function waitForActivities(ids: string[], count: number) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from activities where entity_id = any(${ids})`;
    if (row?.n === count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not ${count} activities of ${ids.length} pages within 10 s`);
}

async function restTitles(m: Member): Promise<string[]> {
  const res = await stack.client.request('GET', `${orgPath(m)}/pages?limit=500`, { token: m.token });
  return res.body.items.map((p: any) => p.title).sort();
}

interface ChunkResponse {
  status: number;
  handle: string;
  offset: string;
  upToDate: boolean;
  messages: any[];
}

async function getChunk(m: Member, offset: string, handle?: string): Promise<ChunkResponse> {
  const query = new URLSearchParams({ offset, log: 'full', ...(handle ? { handle } : {}) });
  const res = await fetch(`${shapeUrl(m)}?${query}`, { headers: auth(m) });
  return {
    status: res.status,
    handle: res.headers.get('electric-handle') ?? '',
    offset: res.headers.get('electric-offset') ?? '',
    upToDate: res.headers.has('electric-up-to-date'),
    messages: await res.json(),
  };
}

/** Follows chunk offsets from `-1` until the response that ends with up-to-date. */
async function readAllChunks(m: Member) {
  const chunks = [await getChunk(m, '-1')];
  while (!chunks.at(-1)?.upToDate) {
    const last = chunks.at(-1)!;
    chunks.push(await getChunk(m, last.offset, last.handle));
    if (chunks.length > 100) throw new Error('no end of the snapshot');
  }
  return chunks;
}

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}`);
}

describe('chunk boundaries', () => {
  for (const rows of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1]) {
    it(`sends ${rows} rows exactly once, at most ${CHUNK} per chunk, the last closed by snapshot-end and up-to-date`, async () => {
      const m = await stack.client.newMember();
      const ids = await createPages(m, rows);
      const chunks = await readAllChunks(m);
      expect(chunks.length).toBe(Math.max(1, Math.ceil(rows / CHUNK)));
      const keys = chunks.flatMap((chunk) =>
        chunk.messages.filter((msg) => msg.key).map((msg) => msg.value.id),
      );
      expect(keys.sort()).toEqual([...ids].sort());
      for (const chunk of chunks.slice(0, -1)) {
        expect(chunk.status).toBe(200);
        expect(chunk.messages).toHaveLength(CHUNK);
        expect(chunk.offset).toMatch(/^snapshot_/);
        expect(chunk.messages.some((msg) => msg.headers.control)).toBe(false);
      }
      const last = chunks.at(-1)!;
      expect(last.offset).toMatch(/^\d+_\d+$/);
      expect(last.messages.at(-2).headers.control).toBe('snapshot-end');
      expect(last.messages.at(-1).headers.control).toBe('up-to-date');
    });
  }

  it('answers 409 to a chunk offset with a handle of another log, and 400 to a forged one', async () => {
    const m = await stack.client.newMember();
    await createPages(m, CHUNK + 1);
    const first = await getChunk(m, '-1');
    expect((await getChunk(m, first.offset, 'page-other-1')).status).toBe(409);
    const forged = await fetch(`${shapeUrl(m)}?offset=snapshot_bm90IGpzb24&handle=${first.handle}`, {
      headers: auth(m),
    });
    expect(forged.status).toBe(400);
    const badTime = Buffer.from(
      JSON.stringify({
        start: { lsn: '1', position: 0 },
        after: { createdAt: 'not a time', id: 'x' },
        visibility: { xmin: '1', xmax: '1', xip_list: [] },
      }),
    ).toString('base64url');
    const res = await fetch(`${shapeUrl(m)}?offset=snapshot_${badTime}&handle=${first.handle}`, {
      headers: auth(m),
    });
    expect(res.status).toBe(400);
  });
});

describe('changes while a chunked snapshot streams', () => {
  it('converges when rows are updated, created and deleted between chunks, for a client resuming mid-snapshot', async () => {
    const m = await stack.client.newMember();
    const ids = await createPages(m, 3 * CHUNK + 1, 'start');
    const first = await getChunk(m, '-1');
    const state = new Map<string, any>();
    for (const msg of first.messages) if (msg.key) state.set(msg.key, msg.value);

    // between chunk 1 and the rest: change a row already sent, delete one not yet sent, add rows
    const path = `${orgPath(m)}/pages`;
    await stack.client.request('PATCH', `${path}/${ids[0]}`, {
      token: m.token,
      body: { title: 'sent, then changed' },
    });
    await stack.client.request('DELETE', `${path}/${ids.at(-1)}`, { token: m.token });
    await createPages(m, 2, 'added');
    // a row whose created_at sorts before the cursor: the chunks skip it, the log brings it
    await sql`update pages set created_at = '2000-01-01' where id = ${ids[CHUNK + 1]!}`;

    // once the worker has logged them all, the changes are before the log's head: only the
    // snapshot's start position still brings them
    const writes = 3 * CHUNK + 1 + 5;
    await waitUntil(async () => {
      const [row] = await sql`select count(*)::int as n from activities where organization_id = ${m.org.id}`;
      return row?.n === writes;
    }, 'the worker logs every write');

    // the official client resumes from chunk 1's offset, as after a reload
    const controller = new AbortController();
    controllers.push(controller);
    const stream = new ShapeStream<Row>({
      url: shapeUrl(m),
      headers: auth(m),
      offset: first.offset as `${number}_${number}`,
      handle: first.handle,
      signal: controller.signal,
    });
    stream.subscribe((messages) => {
      for (const msg of messages) {
        if (!('key' in msg)) continue;
        if (msg.headers.operation === 'delete') state.delete(msg.key);
        else state.set(msg.key, { ...state.get(msg.key), ...msg.value });
      }
    });
    const expected = await restTitles(m);
    expect(expected).toContain('sent, then changed');
    expect(expected).not.toContain(`start${3 * CHUNK}`);
    await waitUntil(
      () => JSON.stringify([...state.values()].map((row) => row.title).sort()) === JSON.stringify(expected),
      'the resumed client converges',
    );
  });

  it('every client, pinned and latest, converges through many chunks under concurrent writes', async () => {
    const m = await stack.client.newMember();
    const ids = await createPages(m, 20, 'base');
    const openShapes = () => {
      const controller = new AbortController();
      controllers.push(controller);
      const options = { url: shapeUrl(m), headers: auth(m), signal: controller.signal };
      return [new Shape(new ShapeStream<Row>(options)), new LatestShape(new LatestShapeStream<Row>(options))];
    };
    const shapes: { currentRows: Row[] }[] = [];
    let random = 7;
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31;
      return random;
    };
    const path = `${orgPath(m)}/pages`;
    for (let round = 0; round < 10; round++) {
      if (round % 3 === 0) shapes.push(...openShapes());
      await Promise.all(
        Array.from({ length: 5 }, async () => {
          const roll = next() % 3;
          if (roll === 0) ids.push(...(await createPages(m, 1, `new${next()}-`)));
          else if (roll === 1 && ids.length > 0) {
            await stack.client.request('PATCH', `${path}/${ids[next() % ids.length]}`, {
              token: m.token,
              body: { title: `u${next()}` },
            });
          } else if (ids.length > 0) {
            await stack.client.request('DELETE', `${path}/${ids.splice(next() % ids.length, 1)[0]}`, {
              token: m.token,
            });
          }
        }),
      );
    }
    const expected = JSON.stringify(await restTitles(m));
    for (const shape of shapes) {
      await waitUntil(
        () => JSON.stringify(shape.currentRows.map((row) => row.title).sort()) === expected,
        'every shape converges',
      );
    }
  }, 60_000);
});

/** The API's count of snapshot chunks after the first, by how they were read. */
async function chunkReads(): Promise<{ ahead: number; onRequest: number }> {
  const text = await (await fetch(`${stack.api.url}/api/metrics`)).text();
  const count = (read: string) =>
    Number(text.match(new RegExp(`^shape_snapshot_chunks_total\\{read="${read}"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { ahead: count('ahead'), onRequest: count('on_request') };
}

/** Applies shape messages to a map of rows by key, as a client does. */
function applyMessages(state: Map<string, any>, messages: any[]) {
  for (const msg of messages) {
    if (!msg.key) continue;
    if (msg.headers.operation === 'delete') state.delete(msg.key);
    else state.set(msg.key, { ...state.get(msg.key), ...msg.value });
  }
}

describe('chunks read ahead of their request', () => {
  it('reads each next chunk while the previous one is written, and answers its request with it', async () => {
    const m = await stack.client.newMember();
    const ids = await createPages(m, 3 * CHUNK + 1);
    const before = await chunkReads();
    const chunks = await readAllChunks(m);
    const after = await chunkReads();
    expect(chunks).toHaveLength(4);
    expect(after.ahead - before.ahead).toBe(3);
    expect(after.onRequest - before.onRequest).toBe(0);
    const sent = chunks.flatMap((chunk) =>
      chunk.messages.filter((msg) => msg.key).map((msg) => msg.value.id),
    );
    expect(sent.sort()).toEqual([...ids].sort());
  });

  it('converges when rows of a chunk read ahead change before the client asks for it', async () => {
    const m = await stack.client.newMember();
    const ids = await createPages(m, 2 * CHUNK + 1, 'start');
    const before = await chunkReads();
    const first = await getChunk(m, '-1');
    // chunk 2 is read ahead by now (within milliseconds of chunk 1); change and delete its rows
    const path = `${orgPath(m)}/pages`;
    await stack.client.request('PATCH', `${path}/${ids[CHUNK]}`, {
      token: m.token,
      body: { title: 'read ahead, then changed' },
    });
    await stack.client.request('DELETE', `${path}/${ids[CHUNK + 1]}`, { token: m.token });
    const second = await getChunk(m, first.offset, first.handle);
    const last = await getChunk(m, second.offset, second.handle);
    expect(last.upToDate).toBe(true);
    expect((await chunkReads()).ahead - before.ahead).toBe(2);

    await waitUntil(async () => {
      const [row] = await sql`select count(*)::int as n from activities where organization_id = ${m.org.id}`;
      return row?.n === 2 * CHUNK + 3;
    }, 'the worker logs every write');
    const state = new Map<string, any>();
    for (const chunk of [first, second, last]) applyMessages(state, chunk.messages);
    let offset = last.offset;
    for (let page = 0; page < 10; page++) {
      const log = await getChunk(m, offset, last.handle);
      applyMessages(state, log.messages);
      offset = log.offset;
      if (log.upToDate) break;
    }
    const titles = [...state.values()].map((row) => row.title).sort();
    expect(titles).toEqual(await restTitles(m));
    expect(titles).toContain('read ahead, then changed');
  });

  it('reads a chunk on request when its read ahead was taken already (a client resuming mid-snapshot)', async () => {
    const m = await stack.client.newMember();
    const ids = await createPages(m, 2 * CHUNK);
    await waitForActivities(ids, ids.length);
    const first = await getChunk(m, '-1');
    // A change logged after the snapshot started (to a row of the first chunk, so the second
    // reads the same): its chunks are no longer held for the next request (held chunks:
    // shape-snapshot-cache.test.ts), so the resumed request reads. Without it, whether the
    // worker had logged the last create before the snapshot started decided the path.
    const edit = await stack.client.request('PATCH', `${orgPath(m)}/pages/${ids[0]}`, {
      token: m.token,
      body: { title: 'changed after the snapshot started' },
      headers: { 'x-transaction-id': txId('tx-chunk') },
    });
    expect(edit.status).toBe(200);
    await waitForActivities(ids, ids.length + 1);
    const before = await chunkReads();
    const taken = await getChunk(m, first.offset, first.handle);
    const resumed = await getChunk(m, first.offset, first.handle);
    const after = await chunkReads();
    expect(after.ahead - before.ahead).toBe(1);
    expect(after.onRequest - before.onRequest).toBe(1);
    expect(resumed).toEqual(taken);
  });
});

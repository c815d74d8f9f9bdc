/**
 * Snapshots held for the next client of a shape: while nothing is logged for the organization,
 * a second client gets the first one's chunks byte for byte; any logged change makes the next
 * client read its snapshot anew, and every client converges to the table either way.
 */
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { Shape as LatestShape, ShapeStream as LatestShapeStream } from '@electric-sql/client-latest';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotChunkOffset } from '../src/modules/shapes/shape-messages.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath } from './support/contract.ts';

const CHUNK = 1_000;
const ROWS = 2_500; // chunks of 1,000, 1,000 and 500 rows
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

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out: ${what}`);
}

async function loggedActivities(m: Member): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from activities where organization_id = ${m.org.id}`;
  return row?.n ?? 0;
}

const pageId = (m: Member, i: number) => `${m.org.id}-${String(i).padStart(6, '0')}`;

/** A member whose organization has ROWS pages, every one of them logged by the worker. */
async function memberWithPages(): Promise<Member> {
  const m = await stack.client.newMember();
  await sql`
    insert into pages (id, organization_id, title, created_by, transactions)
    select ${m.org.id} || '-' || lpad(i::text, 6, '0'), ${m.org.id}, 'Page ' || i, ${m.user.id},
           jsonb_build_object('insert', 'bulk-tx-' || i, 'update', null, 'delete', null)
    from generate_series(1, ${ROWS}) as i`;
  await waitUntil(async () => (await loggedActivities(m)) === ROWS, 'the worker logs every row');
  return m;
}

interface RawChunk {
  handle: string;
  offset: string;
  upToDate: boolean;
  body: string;
}

async function getChunk(m: Member, offset: string, handle?: string, columns?: string): Promise<RawChunk> {
  const query = new URLSearchParams({
    offset,
    ...(handle ? { handle } : {}),
    ...(columns ? { columns } : {}),
  });
  const res = await fetch(`${shapeUrl(m)}?${query}`, { headers: auth(m) });
  expect(res.status).toBe(200);
  return {
    handle: res.headers.get('electric-handle') ?? '',
    offset: res.headers.get('electric-offset') ?? '',
    upToDate: res.headers.has('electric-up-to-date'),
    body: await res.text(),
  };
}

async function readAllChunks(m: Member, between?: (chunk: number) => Promise<void>): Promise<RawChunk[]> {
  const chunks = [await getChunk(m, '-1')];
  while (!chunks.at(-1)?.upToDate) {
    await between?.(chunks.length);
    const last = chunks.at(-1)!;
    chunks.push(await getChunk(m, last.offset, last.handle));
  }
  return chunks;
}

async function chunkReads(): Promise<{ cached: number; ahead: number; onRequest: number }> {
  const text = await (await fetch(`${stack.api.url}/api/metrics`)).text();
  const count = (read: string) =>
    Number(text.match(new RegExp(`^shape_snapshot_chunks_total\\{read="${read}"\\} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { cached: count('cached'), ahead: count('ahead'), onRequest: count('on_request') };
}

const titleOf = (chunks: RawChunk[], id: string): string | undefined => {
  for (const chunk of chunks) {
    for (const msg of JSON.parse(chunk.body)) if (msg.value?.id === id) return msg.value.title;
  }
  return undefined;
};

async function restTitles(m: Member): Promise<string[]> {
  const titles: string[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await stack.client.request(
      'GET',
      `${orgPath(m)}/pages?limit=500${cursor ? `&cursor=${cursor}` : ''}`,
      { token: m.token },
    );
    titles.push(...page.body.items.map((p: any) => p.title));
    cursor = page.body.nextCursor;
  } while (cursor);
  return titles.sort();
}

describe('snapshots held for the next client', () => {
  it('sends a second client of an unchanged shape the same bytes, reading nothing again', async () => {
    const m = await memberWithPages();
    const first = await readAllChunks(m);
    expect(first).toHaveLength(3);
    const before = await chunkReads();
    const second = await readAllChunks(m);
    const after = await chunkReads();
    expect(second.map((c) => [c.offset, c.body])).toEqual(first.map((c) => [c.offset, c.body]));
    expect(after.cached - before.cached).toBe(3);
    expect(after.ahead - before.ahead).toBe(0);
    expect(after.onRequest - before.onRequest).toBe(0);
  });

  it('reads the snapshot anew for a client that comes after a change, and shows the change in it', async () => {
    const m = await memberWithPages();
    const changed = pageId(m, 1_500); // in the second chunk
    const first = await readAllChunks(m);
    expect(titleOf(first, changed)).toBe('Page 1500');
    await stack.client.request('PATCH', `${orgPath(m)}/pages/${changed}`, {
      token: m.token,
      body: { title: 'changed between two clients' },
    });
    await waitUntil(async () => (await loggedActivities(m)) === ROWS + 1, 'the worker logs the change');
    const before = await chunkReads();
    const second = await readAllChunks(m);
    expect((await chunkReads()).cached - before.cached).toBe(0);
    expect(titleOf(second, changed)).toBe('changed between two clients');
    expect(second.at(-1)?.offset).not.toBe(first.at(-1)?.offset);
  });

  it('stops serving a held snapshot to a client in the middle of it when a change is logged', async () => {
    const m = await memberWithPages();
    const changed = pageId(m, 2_400); // in the last chunk
    await readAllChunks(m);
    const before = await chunkReads();
    const second = await readAllChunks(m, async (chunk) => {
      if (chunk !== 1) return;
      await stack.client.request('PATCH', `${orgPath(m)}/pages/${changed}`, {
        token: m.token,
        body: { title: 'changed while the snapshot streams' },
      });
      await waitUntil(async () => (await loggedActivities(m)) === ROWS + 1, 'the worker logs the change');
    });
    const after = await chunkReads();
    // the first chunk came held; the later ones were read, after the change
    expect(after.cached - before.cached).toBe(1);
    expect(titleOf(second, changed)).toBe('changed while the snapshot streams');
  });

  it('sends a client resuming in the middle of a held snapshot the chunk it asks for again', async () => {
    const m = await memberWithPages();
    const chunks = await readAllChunks(m);
    const before = await chunkReads();
    const resumed = await getChunk(m, chunks[0]!.offset, chunks[0]!.handle);
    expect((await chunkReads()).cached - before.cached).toBe(1);
    expect(resumed.body).toBe(chunks[1]!.body);
    expect(resumed.offset).toBe(chunks[1]!.offset);
  });

  it('every client, pinned and latest, converges with a change between them and one while they stream', async () => {
    const m = await memberWithPages();
    const path = `${orgPath(m)}/pages`;
    const options = () => {
      const controller = new AbortController();
      controllers.push(controller);
      return { url: shapeUrl(m), headers: auth(m), signal: controller.signal };
    };
    const pinned = new Shape(new ShapeStream<Row>(options()));
    await pinned.rows;
    await stack.client.request('PATCH', `${path}/${pageId(m, 10)}`, {
      token: m.token,
      body: { title: 'between' },
    });
    await waitUntil(async () => (await loggedActivities(m)) === ROWS + 1, 'the worker logs the change');
    const latest = new LatestShape(new LatestShapeStream<Row>(options()));
    const again = new Shape(new ShapeStream<Row>(options()));
    await stack.client.request('DELETE', `${path}/${pageId(m, 2_000)}`, { token: m.token });
    await stack.client.request('PATCH', `${path}/${pageId(m, 20)}`, {
      token: m.token,
      body: { title: 'while' },
    });
    const expected = JSON.stringify(await restTitles(m));
    expect(expected).toContain('between');
    for (const shape of [pinned, latest, again]) {
      await waitUntil(
        () => JSON.stringify(shape.currentRows.map((row) => row.title).sort()) === expected,
        'every shape converges',
      );
    }
  }, 60_000);
});

describe('held snapshots per organization', () => {
  const BIG_ROWS = 500; // one chunk
  const CONTENT = 64 * 1_024; // 500 rows of it: about 33 MB a snapshot

  /** A member whose organization has BIG_ROWS large pages, every one of them logged. */
  async function memberWithLargePages(): Promise<Member> {
    const m = await stack.client.newMember();
    await sql`
      insert into pages (id, organization_id, title, content, created_by, transactions)
      select ${m.org.id} || '-' || lpad(i::text, 6, '0'), ${m.org.id}, 'Page ' || i,
             repeat(md5(i::text), ${CONTENT / 32}), ${m.user.id},
             jsonb_build_object('insert', 'bulk-tx-' || i, 'update', null, 'delete', null)
      from generate_series(1, ${BIG_ROWS}) as i`;
    await waitUntil(async () => (await loggedActivities(m)) === BIG_ROWS, 'the worker logs every row');
    return m;
  }

  it("keeps another organization's held snapshot through one organization's flood of shapes and forged offsets", async () => {
    const b = await memberWithPages();
    const held = await readAllChunks(b);
    const a = await memberWithLargePages();
    // five column sets of a's pages: about 165 MB, more than every organization's budget together
    const columnSets = ['organization_id', 'created_at', 'created_by', 'title', 'transactions'];
    let snapshot: RawChunk | undefined;
    for (const column of columnSets) {
      snapshot = await getChunk(a, '-1', undefined, `id,content,${column}`);
      expect(snapshot.upToDate).toBe(true);
      expect(snapshot.body.length).toBeGreaterThan(BIG_ROWS * CONTENT);
    }
    // valid-looking chunk offsets of a's current snapshot that no chunk gave out, each asked twice
    const start = snapshot!.offset.split('_');
    const forged = [1, 2, 3].map((i) =>
      snapshotChunkOffset({
        start: { lsn: start[0]!, position: Number(start[1]) },
        after: { createdAt: '1970-01-01T00:00:00.000Z', id: '' },
        visibility: { xmin: '1', xmax: '1', xip_list: [] },
        rows: BIG_ROWS + i,
      }),
    );
    const beforeForged = await chunkReads();
    for (const offset of [...forged, ...forged]) {
      const chunk = await getChunk(a, offset, snapshot!.handle, 'id,content,transactions');
      expect(chunk.body.length).toBeGreaterThan(BIG_ROWS * CONTENT);
    }
    const afterForged = await chunkReads();
    // read for each request, never held: the second ask reads again
    expect(afterForged.cached - beforeForged.cached).toBe(0);
    expect(afterForged.onRequest - beforeForged.onRequest).toBe(6);
    // b's snapshot is still held: its next client gets the same bytes without a read
    const again = await readAllChunks(b);
    expect((await chunkReads()).cached - afterForged.cached).toBe(held.length);
    expect(again.map((c) => c.body)).toEqual(held.map((c) => c.body));
  }, 60_000);

  it("reads another organization's next chunks ahead while one organization's forged offsets start reads nobody takes", async () => {
    const a = await memberWithPages();
    const chunks = await readAllChunks(a);
    const start = chunks.at(-1)!.offset.split('_');
    // four chunk offsets of a few rows each, every one with more to come: each starts a read of
    // its next chunk that a never asks for
    for (const rows of [1, 2, 3, 4]) {
      const offset = snapshotChunkOffset({
        start: { lsn: start[0]!, position: Number(start[1]) },
        after: { createdAt: '1970-01-01T00:00:00.000Z', id: '' },
        visibility: { xmin: '1', xmax: '1', xip_list: [] },
        rows,
      });
      expect((await getChunk(a, offset, chunks[0]!.handle)).upToDate).toBe(false);
    }
    const b = await memberWithPages();
    const before = await chunkReads();
    expect(await readAllChunks(b)).toHaveLength(3);
    const after = await chunkReads();
    expect(after.ahead - before.ahead).toBe(2);
    expect(after.onRequest - before.onRequest).toBe(0);
  }, 60_000);
});

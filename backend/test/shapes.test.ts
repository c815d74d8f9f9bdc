import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { matchStream } from '@electric-sql/experimental';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId, waitForActivity } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;
let mallory: Member;
const streams: AbortController[] = [];

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 3_000 } });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
  alice = await stack.client.newMember();
  mallory = await stack.client.newMember();
});
afterAll(async () => {
  for (const controller of streams) controller.abort();
  await sql?.end();
  await stack?.stop();
});

const base = orgPath;
const write = (
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  m: Member = alice,
) => stack.client.request(method, path, { token: m.token, body, headers });

function shapeStream(
  m: Member,
  options: {
    entity?: string;
    liveSse?: boolean;
    offset?: any;
    handle?: string;
    params?: Record<string, string>;
    token?: string;
  } = {},
) {
  const controller = new AbortController();
  streams.push(controller);
  return new ShapeStream<Row>({
    url: `${stack.api.url}${base(m)}/shapes/${options.entity ?? 'pages'}`,
    headers: { authorization: `Bearer ${options.token ?? m.token}` },
    signal: controller.signal,
    ...(options.liveSse ? { liveSse: true } : {}),
    ...(options.offset ? { offset: options.offset, handle: options.handle } : {}),
    ...(options.params ? { params: options.params as never } : {}),
  });
}

async function restRows(m: Member, entity = 'pages') {
  const res = await stack.client.request('GET', `${base(m)}/${entity}?limit=500`, { token: m.token });
  return res.body.items as any[];
}

/** Waits until the Shape's rows (by id → title) equal the REST list. */
async function converge(shape: Shape<Row>, m: Member, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const expected = JSON.stringify((await restRows(m)).map((p) => [p.id, p.title]).sort());
    const actual = JSON.stringify([...shape.currentValue.values()].map((p: any) => [p.id, p.title]).sort());
    if (expected === actual) return;
    last = `expected ${expected.slice(0, 300)}\nactual   ${actual.slice(0, 300)}`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`shape did not converge:\n${last}`);
}

describe('shape protocol with the official client', () => {
  it('syncs an initial snapshot equal to the REST list, with Electric value types', async () => {
    for (let i = 0; i < 5; i++)
      await write(
        'POST',
        `${base(alice)}/pages`,
        { title: `initial ${i}`, content: `c${i}` },
        { 'x-transaction-id': txId('tx-shape') },
      );
    const shape = new Shape(shapeStream(alice));
    const rows = await shape.rows;
    const rest = await restRows(alice);
    expect(rows.map((r: any) => r.id).sort()).toEqual(rest.map((p) => p.id).sort());
    const first = rows.find((r: any) => r.id === rest[0].id) as any;
    expect(first).toMatchObject({
      title: rest[0].title,
      organization_id: alice.org.id,
      last_client_id: null,
    });
    expect(first.transactions).toEqual(rest[0].transactions);
    expect(typeof first.created_at).toBe('string');
  });

  it('confirms creates, updates and deletes through matchStream on the transactions column', async () => {
    const stream = shapeStream(alice);
    await new Shape(stream).rows;
    const path = `${base(alice)}/pages`;

    const createTx = txId('tx-shape');
    const created = matchStream(
      stream,
      ['insert'],
      (m: any) => m.value.transactions?.insert === createTx,
      10_000,
    );
    const res = await write('POST', path, { title: 'confirm me' }, { 'x-transaction-id': createTx });
    const insert = await created;
    expect(insert.value.id).toBe(res.body.id);

    const updateTx = txId('tx-shape');
    const updated = matchStream(
      stream,
      ['update'],
      (m: any) => m.value.transactions?.update === updateTx,
      10_000,
    );
    await write('PATCH', `${path}/${res.body.id}`, { title: 'confirmed' }, { 'x-transaction-id': updateTx });
    const update = await updated;
    expect(update.value.title).toBe('confirmed');
    // Electric's own confirmation path: txids carry the writing transaction's xid
    const [row] = await sql`select xmin::text from pages where id = ${res.body.id}`;
    expect((update.headers as any).txids).toEqual([Number(row!.xmin)]);

    const deleteTx = txId('tx-shape');
    const deleted = matchStream(
      stream,
      ['delete'],
      (m: any) => m.value.transactions?.delete === deleteTx,
      10_000,
    );
    await write('DELETE', `${path}/${res.body.id}`, undefined, { 'x-transaction-id': deleteTx });
    expect((await deleted).value.id).toBe(res.body.id);
  });

  it('streams live changes over SSE too', async () => {
    const stream = shapeStream(alice, { liveSse: true });
    await new Shape(stream).rows;
    const tx = txId('tx-shape');
    const seen = matchStream(stream, ['insert'], (m: any) => m.value.transactions?.insert === tx, 10_000);
    await write('POST', `${base(alice)}/pages`, { title: 'over sse' }, { 'x-transaction-id': tx });
    expect((await seen).value.title).toBe('over sse');
  });

  it('serves attachments through the same generic endpoint with int8 sizes as BigInt', async () => {
    const tx = txId('tx-shape');
    await write(
      'POST',
      `${base(alice)}/attachments`,
      { filename: 'a.txt', contentType: 'text/plain', size: 42, url: 'https://example.com/a.txt' },
      { 'x-transaction-id': tx },
    );
    const rows = await new Shape(shapeStream(alice, { entity: 'attachments' })).rows;
    const row = rows.find((r: any) => r.transactions.insert === tx) as any;
    expect(row.size).toBe(42n);
    expect(row.filename).toBe('a.txt');
  });
});

describe('handles and offsets', () => {
  async function firstResponse(m: Member) {
    const res = await fetch(`${stack.api.url}${base(m)}/shapes/pages?offset=-1&log=full`, {
      headers: { authorization: `Bearer ${m.token}` },
    });
    return {
      handle: res.headers.get('electric-handle')!,
      offset: res.headers.get('electric-offset')!,
      body: await res.json(),
      res,
    };
  }

  it('sends the headers the client requires and ends the snapshot with up-to-date', async () => {
    const { res, body, offset } = await firstResponse(alice);
    expect(res.status).toBe(200);
    expect(res.headers.get('electric-schema')).toContain('"transactions":{"type":"jsonb"');
    expect(offset).toMatch(/^\d+_\d+$/);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(body.at(-1).headers.control).toBe('up-to-date');
    expect(body.at(-1).headers.global_last_seen_lsn).toMatch(/^\d+$/);
  });

  it('sends electric-schema on every answer but the live ones, as Electric does', async () => {
    const { offset, handle } = await firstResponse(alice);
    const url = `${stack.api.url}${base(alice)}/shapes/pages?offset=${offset}&handle=${handle}`;
    const headers = { authorization: `Bearer ${alice.token}` };
    const catchUp = await fetch(url, { headers });
    await catchUp.arrayBuffer();
    expect(catchUp.headers.get('electric-schema')).toContain('"transactions":{"type":"jsonb"');
    const live = fetch(`${url}&live=true&cursor=`, { headers });
    await new Promise((r) => setTimeout(r, 200));
    await write('POST', `${base(alice)}/pages`, { title: 'live' }, { 'x-transaction-id': txId('tx-schema') });
    const answer = await live;
    expect(await answer.text()).toContain('"live"');
    expect(answer.headers.get('electric-schema')).toBeNull();
    expect(answer.headers.get('electric-cursor')).toMatch(/^\d+$/);
  });

  it('lets the allowed browser origin read the electric-* headers (CORS), and no other origin', async () => {
    const url = `${stack.api.url}${base(alice)}/shapes/pages?offset=-1`;
    const allowed = await fetch(url, {
      headers: { authorization: `Bearer ${alice.token}`, origin: 'http://localhost:5173' },
    });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    const exposed = (allowed.headers.get('access-control-expose-headers') ?? '')
      .toLowerCase()
      .split(/\s*,\s*/);
    expect(exposed).toEqual(
      expect.arrayContaining([
        'electric-handle',
        'electric-offset',
        'electric-schema',
        'electric-cursor',
        'x-transaction-id',
      ]),
    );
    await allowed.body?.cancel();
    const foreign = await fetch(url, {
      headers: { authorization: `Bearer ${alice.token}`, origin: 'https://evil.example' },
    });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    await foreign.body?.cancel();
  });

  it('answers 409 with the current handle for an unknown handle, and the client recovers', async () => {
    const { offset, handle } = await firstResponse(alice);
    const raw = await fetch(
      `${stack.api.url}${base(alice)}/shapes/pages?handle=bogus-handle&offset=${offset}`,
      { headers: { authorization: `Bearer ${alice.token}` } },
    );
    expect(raw.status).toBe(409);
    expect(raw.headers.get('electric-handle')).toBe(handle);
    expect(await raw.json()).toEqual([{ headers: { control: 'must-refetch' } }]);

    const shape = new Shape(shapeStream(alice, { offset, handle: 'bogus-handle' }));
    await shape.rows;
    await converge(shape, alice);
  });

  it('continues from a saved offset and handle without losing changes made meanwhile', async () => {
    const { offset, handle } = await firstResponse(alice);
    const txs = [txId('tx-shape'), txId('tx-shape'), txId('tx-shape')];
    for (const tx of txs)
      await write('POST', `${base(alice)}/pages`, { title: tx }, { 'x-transaction-id': tx });
    const stream = shapeStream(alice, { offset, handle });
    const received: any[] = [];
    stream.subscribe((messages) => {
      received.push(...messages);
    });
    const deadline = Date.now() + 10_000;
    while (
      Date.now() < deadline &&
      txs.some((tx) => !received.some((m) => m.value?.transactions?.insert === tx))
    ) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(txs.filter((tx) => received.some((m) => m.value?.transactions?.insert === tx))).toEqual(txs);
  });

  it('answers 409 to an offset older than retention, and a fresh snapshot is not sent back behind it', async () => {
    const member = await stack.client.newMember();
    const tx = txId('tx-shape');
    await write('POST', `${base(member)}/pages`, { title: 'old' }, { 'x-transaction-id': tx }, member);
    await waitForActivity(sql, tx);
    const { offset, handle } = await firstResponse(member);
    const [{ lsn }] = (await sql`select max(lsn)::text as lsn from activities`) as any;
    // what the CDC worker's retention job records after deleting entries through this LSN
    await sql`update activity_log set pruned_through_lsn = ${lsn}::bigint + 1`;
    try {
      const stale = await fetch(
        `${stack.api.url}${base(member)}/shapes/pages?handle=${handle}&offset=${offset}`,
        { headers: { authorization: `Bearer ${member.token}` } },
      );
      expect(stale.status).toBe(409);
      const fresh = await firstResponse(member);
      const live = await fetch(
        `${stack.api.url}${base(member)}/shapes/pages?handle=${fresh.handle}&offset=${fresh.offset}`,
        { headers: { authorization: `Bearer ${member.token}` } },
      );
      expect(live.status).toBe(200);
      const shape = new Shape(shapeStream(member, { offset, handle }));
      await shape.rows;
      await converge(shape, member);
    } finally {
      await sql`update activity_log set pruned_through_lsn = 0`;
    }
  });

  it('rotates handles after a CDC resync so clients refetch', async () => {
    const { offset, handle } = await firstResponse(alice);
    await sql`update cdc_state set epoch = epoch + 1`;
    const res = await fetch(`${stack.api.url}${base(alice)}/shapes/pages?handle=${handle}&offset=${offset}`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('electric-handle')).not.toBe(handle);
  });

  it('rejects a malformed offset with 400', async () => {
    const res = await fetch(`${stack.api.url}${base(alice)}/shapes/pages?offset=abc`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(res.status).toBe(400);
  });
});

describe('tenant isolation of shapes', () => {
  it("answers 404 for another organization's shape", async () => {
    const res = await fetch(`${stack.api.url}${base(alice)}/shapes/pages?offset=-1`, {
      headers: { authorization: `Bearer ${mallory.token}` },
    });
    expect(res.status).toBe(404);
  });

  it('never widens the shape whatever table, where, columns or params a caller sends', async () => {
    await write(
      'POST',
      `${base(alice)}/pages`,
      { title: 'alice secret' },
      { 'x-transaction-id': txId('tx-shape') },
    );
    await write(
      'POST',
      `${base(mallory)}/pages`,
      { title: 'mallory own' },
      { 'x-transaction-id': txId('tx-shape') },
      mallory,
    );
    const attempts = [
      'table=pages',
      'table=users',
      'table=sessions',
      'where=1%3D1',
      'where=organization_id%20IS%20NOT%20NULL%20OR%20true',
      'columns=%22id%22,%22organization_id%22',
      `params%5B1%5D=${alice.org.id}`,
      `where=organization_id%3D%241&params%5B1%5D=${alice.org.id}`,
    ];
    for (const attempt of attempts) {
      const res = await fetch(`${stack.api.url}${base(mallory)}/shapes/pages?offset=-1&${attempt}`, {
        headers: { authorization: `Bearer ${mallory.token}` },
      });
      expect(res.status, attempt).toBe(200);
      const body = await res.json();
      const rows = body.filter((m: any) => m.key).map((m: any) => m.value);
      expect(rows.length, attempt).toBeGreaterThan(0);
      for (const row of rows) {
        expect(row.organization_id, attempt).toBe(mallory.org.id);
        expect(row.password_hash, attempt).toBeUndefined();
      }
    }
    // a column that is not the entity's own is refused, never read
    const widened = await fetch(
      `${stack.api.url}${base(mallory)}/shapes/pages?offset=-1&columns=%22id%22,%22password_hash%22`,
      { headers: { authorization: `Bearer ${mallory.token}` } },
    );
    expect(widened.status).toBe(400);
    expect((await widened.json()).code).toBe('VALIDATION_FAILED');
  });
});

describe('convergence under concurrent writes (guarantees 4 and 6)', () => {
  it('every streaming client, including ones joining mid-way, converges to the REST list after 500 random writes', async () => {
    const member = await stack.client.newMember();
    const shapes: Shape<Row>[] = [
      new Shape(shapeStream(member)),
      new Shape(shapeStream(member, { liveSse: true })),
    ];
    await Promise.all(shapes.map((s) => s.rows));
    const live: string[] = [];
    let random = 42;
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31;
      return random;
    };
    const path = `${base(member)}/pages`;
    for (let batch = 0; batch < 25; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const roll = next() % 10;
          if (roll < 5 || live.length === 0) {
            const res = await write(
              'POST',
              path,
              { title: `t${next()}` },
              { 'x-transaction-id': txId('tx-shape') },
              member,
            );
            if (res.status === 201) live.push(res.body.id);
          } else if (roll < 8) {
            const id = live[next() % live.length]!;
            await write(
              'PATCH',
              `${path}/${id}`,
              { title: `u${next()}` },
              { 'x-transaction-id': txId('tx-shape') },
              member,
            );
          } else {
            const id = live.splice(next() % live.length, 1)[0]!;
            await write(
              'DELETE',
              `${path}/${id}`,
              undefined,
              { 'x-transaction-id': txId('tx-shape') },
              member,
            );
          }
        }),
      );
      if (batch === 8 || batch === 16) shapes.push(new Shape(shapeStream(member, { liveSse: batch === 16 })));
    }
    for (const shape of shapes) await converge(shape, member);
    const counts = await stack.client.request('GET', `${base(member)}/counts`, { token: member.token });
    const deadline = Date.now() + 10_000;
    let total = counts.body.counts.page;
    while (total !== live.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      total = (await stack.client.request('GET', `${base(member)}/counts`, { token: member.token })).body
        .counts.page;
    }
    expect(total).toBe(live.length);
  }, 90_000);
});

/**
 * Encoding each message once: one read and one encoding of the log for every request waiting
 * at the same offset (`readLogPage`); snapshot rows encoded by PostgreSQL exactly as the log's
 * messages are in Node; and the CORS headers every response keeps now that they are added to
 * the finished response instead of around the handler (none without an Origin but `vary`).
 */

import { trackedPages } from '@sync/db/tracked-tables';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allColumns } from '../src/modules/shapes/shape-columns.ts';
import { readLogPage } from '../src/modules/shapes/shape-operations.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath, txId, waitForActivity } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;
const pages = trackedPages;
if (!pages) throw new Error('pages is not a tracked table');

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 3_000 } });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
  alice = await stack.client.newMember();
  for (const title of ['first', 'second']) {
    const transactionId = txId('tx-page');
    await stack.client.request('POST', `${orgPath(alice)}/pages`, {
      token: alice.token,
      body: { title },
      headers: { 'x-transaction-id': transactionId },
    });
    await waitForActivity(sql, transactionId);
  }
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

const start = { lsn: '0', position: 0 };

describe('a page of the log, read and encoded once for every request at its offset', () => {
  it('gives concurrent readers of one offset the same encoded page', async () => {
    const readers = Array.from({ length: 5 }, () =>
      readLogPage(sql, alice.org.id, pages, allColumns(pages), start, 1_000),
    );
    const [first, ...others] = await Promise.all(readers);
    for (const other of others) expect(other).toBe(first);
    expect(first?.changes).toHaveLength(2);
    const body = JSON.parse(first?.body ?? '[]');
    expect(body.map((m: { value?: { title: string } }) => m.value?.title)).toEqual([
      'first',
      'second',
      undefined,
    ]);
    expect(body.at(-1).headers.control).toBe('up-to-date');
    expect(JSON.parse(first?.upToDate ?? 'null')).toEqual(body.at(-1));
    expect(body[1].headers).toMatchObject({ lsn: first?.last.lsn, op_position: first?.last.position });
  });

  it('does not give a reader woken after a read started that older read', async () => {
    const older = readLogPage(sql, alice.org.id, pages, allColumns(pages), start, 1_000);
    const notifiedAt = performance.now();
    const woken = readLogPage(sql, alice.org.id, pages, allColumns(pages), start, 1_000, notifiedAt);
    const joined = readLogPage(sql, alice.org.id, pages, allColumns(pages), start, 1_000, notifiedAt);
    const [a, b, c] = await Promise.all([older, woken, joined]);
    expect(b).not.toBe(a);
    expect(c).toBe(b);
    expect(b?.body).toBe(a?.body); // same entries, same bytes
  });

  it('ends a full page without up-to-date, and an empty one at the position it read after', async () => {
    const full = await readLogPage(sql, alice.org.id, pages, allColumns(pages), start, 1);
    expect(full?.changes).toHaveLength(1);
    expect(full?.upToDate).toBeNull();
    expect(JSON.parse(full?.body ?? '[]')).toHaveLength(1);
    const head = full
      ? await readLogPage(sql, alice.org.id, pages, allColumns(pages), full.last, 1_000)
      : null;
    const empty = head
      ? await readLogPage(sql, alice.org.id, pages, allColumns(pages), head.last, 1_000)
      : null;
    expect(empty?.changes).toEqual([]);
    expect(empty?.last).toEqual(head?.last);
    expect(
      JSON.parse(empty?.body ?? '[]').map((m: { headers: { control: string } }) => m.headers.control),
    ).toEqual(['up-to-date']);
  });
});

describe('snapshot rows encoded by PostgreSQL', () => {
  it('writes byte for byte the JSON Node writes, and the values the log sends for the same row', async () => {
    const tricky = 'a "quote", a back\\slash, a\nnewline, a\ttab, \u0001, ünïcødé 😀 \u2028 </script>';
    const transactionId = txId('tx-tricky');
    const created = await stack.client.request('POST', `${orgPath(alice)}/pages`, {
      token: alice.token,
      body: { title: tricky, content: tricky },
      headers: { 'x-transaction-id': transactionId },
    });
    await waitForActivity(sql, transactionId);
    // an id the API would refuse, written directly: the key's quotes are doubled, as Electric does
    await sql`
      insert into pages (id, organization_id, title, created_by, modified_by, transactions)
      values ('odd"id', ${alice.org.id}, 'odd', ${alice.user.id}, ${alice.user.id}, '{"insert":"x","update":null,"delete":null}')`;

    const shapes = `${stack.api.url}${orgPath(alice)}/shapes/pages`;
    const headers = { authorization: `Bearer ${alice.token}` };
    const first = await fetch(`${shapes}?offset=-1`, { headers });
    const raw = await first.text();
    // no whitespace, the same escapes: exactly what JSON.stringify writes
    expect(JSON.stringify(JSON.parse(raw))).toBe(raw);
    const snapshot: { key?: string; value?: Record<string, string | null> }[] = JSON.parse(raw);
    const odd = snapshot.find((m) => m.value?.id === 'odd"id');
    expect(odd?.key).toBe('"public"."pages"/"odd""id"');
    expect(odd?.value).toMatchObject({ modified_by: alice.user.id, deleted_at: null, modified_at: null });

    const handle = first.headers.get('electric-handle') ?? '';
    const fromLog = await (await fetch(`${shapes}?offset=0_0&handle=${handle}`, { headers })).json();
    const logged = fromLog.find((m: { value?: { id: string } }) => m.value?.id === created.body.id);
    const snapshotted = snapshot.find((m) => m.value?.id === created.body.id);
    expect(snapshotted?.value?.title).toBe(tricky);
    expect(snapshotted?.key).toBe(logged.key);
    // jsonb is text either way; PostgreSQL's text of it spaces its keys, the log's does not
    const parsed = (value?: Record<string, string | null>) => ({
      ...value,
      transactions: JSON.parse(value?.transactions ?? 'null'),
    });
    expect(parsed(snapshotted?.value)).toEqual(parsed(logged.value));
  });
});

describe('CORS headers on every kind of response', () => {
  const origin = 'http://localhost:5173';
  const expectCors = (res: Response) => {
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-expose-headers')).toContain('electric-offset');
    expect(res.headers.get('vary')).toMatch(/Origin/);
  };

  it('on a JSON answer, an error, a live long-poll, an SSE stream and a preflight', async () => {
    const headers = { authorization: `Bearer ${alice.token}`, origin };
    const list = await fetch(`${stack.api.url}${orgPath(alice)}/pages`, { headers });
    expectCors(list);
    await list.arrayBuffer();
    const refused = await fetch(`${stack.api.url}${orgPath(alice)}/pages`, { headers: { origin } });
    expect(refused.status).toBe(401);
    expectCors(refused);
    await refused.arrayBuffer();

    const shapes = `${stack.api.url}${orgPath(alice)}/shapes/pages`;
    const snapshot = await fetch(`${shapes}?offset=-1`, { headers });
    expectCors(snapshot);
    await snapshot.arrayBuffer();
    const at = new URLSearchParams({
      handle: snapshot.headers.get('electric-handle') ?? '',
      offset: snapshot.headers.get('electric-offset') ?? '',
      live: 'true',
    });
    const poll = await fetch(`${shapes}?${at}`, { headers });
    expectCors(poll);
    expect(poll.headers.get('vary')).toBe('authorization, cookie, Origin');
    await poll.arrayBuffer();
    const sse = new AbortController();
    const stream = await fetch(`${shapes}?${at}&live_sse=true`, { headers, signal: sse.signal });
    expectCors(stream);
    sse.abort();

    const preflight = await fetch(shapes, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-methods')).toContain('GET');
  });

  it('sends none without an Origin, but still varies by it, so a cache keeps such answers from browsers', async () => {
    const headers = { authorization: `Bearer ${alice.token}` };
    const shapes = `${stack.api.url}${orgPath(alice)}/shapes/pages`;
    const snapshot = await fetch(`${shapes}?offset=-1`, { headers });
    await snapshot.arrayBuffer();
    const at = new URLSearchParams({
      handle: snapshot.headers.get('electric-handle') ?? '',
      offset: snapshot.headers.get('electric-offset') ?? '',
      live: 'true',
    });
    const list = await fetch(`${stack.api.url}${orgPath(alice)}/pages`, { headers });
    await list.arrayBuffer();
    // woken by a change: the answer written straight to Node
    const woken = fetch(`${shapes}?${at}`, { headers });
    await new Promise((r) => setTimeout(r, 300));
    await stack.client.request('POST', `${orgPath(alice)}/pages`, {
      token: alice.token,
      body: { title: 'no origin' },
      headers: { 'x-transaction-id': txId('tx-page') },
    });
    const poll = await woken;
    expect(await poll.text()).toContain('no origin');
    for (const res of [snapshot, list, poll]) {
      const names = [...res.headers.keys()];
      expect(names.filter((name) => name.startsWith('access-control-'))).toEqual([]);
      expect(res.headers.get('vary')).toMatch(/Origin/);
    }
    expect(poll.headers.get('vary')).toBe('authorization, cookie, Origin');
  });
});

/**
 * A chunk continues after the (created_at, id) of the last row sent, read back from that row's
 * message: ids that JSON escapes and rows sharing one created_at still cross every boundary once.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath } from './support/contract.ts';

const CHUNK = 3;
let stack: TestStack;
let sql: postgres.Sql;

beforeAll(async () => {
  stack = await startTestStack({ config: { shapeSnapshotChunkRows: CHUNK } });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

it('sends rows whose ids JSON escapes, all created at one instant, each exactly once across chunks', async () => {
  const m = await stack.client.newMember();
  const suffixes = [
    'a"quote',
    'b\\backslash',
    'c\u00e9\u4e2d',
    'd\ttab',
    'e"\\"',
    'f/slash',
    'g\u2028line',
    'h',
  ];
  const ids = suffixes.map((suffix) => `${m.org.id}-${suffix}`);
  await sql`
    insert into pages (id, organization_id, title, created_by, created_at, transactions)
    select id, ${m.org.id}, 'same instant', ${m.user.id}, '2026-01-01 00:00:00.123456+00',
           '{"insert":null,"update":null,"delete":null}'
    from unnest(${ids}::text[]) as id`;
  const url = `${stack.api.url}${orgPath(m)}/shapes/pages`;
  const headers = { authorization: `Bearer ${m.token}` };
  const sent: string[] = [];
  let query = new URLSearchParams({ offset: '-1' });
  for (let chunk = 0; chunk < 10; chunk++) {
    const res = await fetch(`${url}?${query}`, { headers });
    expect(res.status).toBe(200);
    const rows = ((await res.json()) as any[]).filter((msg) => msg.key);
    expect(rows.length).toBeLessThanOrEqual(CHUNK);
    sent.push(...rows.map((msg) => msg.value.id));
    if (res.headers.has('electric-up-to-date')) break;
    query = new URLSearchParams({
      offset: res.headers.get('electric-offset') ?? '',
      handle: res.headers.get('electric-handle') ?? '',
    });
  }
  expect(sent).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
});

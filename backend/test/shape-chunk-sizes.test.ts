/**
 * Snapshot chunks grow: the first holds 1,000 rows (the client has rows to parse within
 * milliseconds), each next one twice the last, up to `shapeSnapshotChunkRows`, and no offset
 * can ask for more than that.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../src/testing/api.ts';
import { orgPath } from './support/contract.ts';

const MAX_ROWS = 4_000;
let stack: TestStack;
let sql: postgres.Sql;

beforeAll(async () => {
  stack = await startTestStack({ config: { shapeSnapshotChunkRows: MAX_ROWS } });
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

it('sends chunks of 1,000, 2,000, then 4,000 rows, each row once', async () => {
  const m = await stack.client.newMember();
  const rows = 11_500;
  await sql`
    insert into pages (id, organization_id, title, created_by, transactions)
    select 'bulk-' || lpad(i::text, 6, '0'), ${m.org.id}, 'Page ' || i, ${m.user.id},
           '{"insert":null,"update":null,"delete":null}'
    from generate_series(1, ${rows}) as i`;
  const url = `${stack.api.url}${orgPath(m)}/shapes/pages`;
  const headers = { authorization: `Bearer ${m.token}` };
  const sizes: number[] = [];
  const ids = new Set<string>();
  let query = new URLSearchParams({ offset: '-1' });
  for (;;) {
    const res = await fetch(`${url}?${query}`, { headers });
    expect(res.status).toBe(200);
    const rowMessages = ((await res.json()) as any[]).filter((msg) => msg.key);
    sizes.push(rowMessages.length);
    for (const msg of rowMessages) ids.add(msg.value.id);
    if (res.headers.has('electric-up-to-date')) break;
    const offset = res.headers.get('electric-offset') ?? '';
    query = new URLSearchParams({ offset, handle: res.headers.get('electric-handle') ?? '' });
    // an offset that asks for more rows than a chunk may hold gets the configured size
    const decoded = JSON.parse(Buffer.from(offset.slice('snapshot_'.length), 'base64url').toString());
    if (decoded.rows === MAX_ROWS && sizes.length === 3) {
      const greedy = Buffer.from(JSON.stringify({ ...decoded, rows: 1_000_000 })).toString('base64url');
      const res = await fetch(`${url}?offset=snapshot_${greedy}&handle=${query.get('handle')}`, { headers });
      expect(((await res.json()) as any[]).filter((msg) => msg.key)).toHaveLength(MAX_ROWS);
    }
  }
  expect(sizes).toEqual([1_000, 2_000, 4_000, 4_000, 500]);
  expect(ids.size).toBe(rows);
});

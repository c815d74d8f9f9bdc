import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { countOf, txId } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;

beforeAll(async () => {
  stack = await startTestStack();
  sql = postgres(stack.cluster.url, { onnotice: () => {} });
  alice = await stack.client.newMember();
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

const pages = (m: Member) => `/api/organizations/${m.org.slug}/pages`;

function write(
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  token = alice.token,
) {
  return stack.client.request(method, path, { token, body, headers });
}

async function createPage(title = 'A page', headers: Record<string, string> = {}) {
  const res = await write('POST', pages(alice), { title }, { 'x-transaction-id': txId(), ...headers });
  expect(res.status).toBe(201);
  return res.body;
}

describe('tracked creates', () => {
  it('stamps transactions.insert and lastClientId from the headers and echoes the transaction id', async () => {
    const tx = txId();
    const res = await write(
      'POST',
      pages(alice),
      { title: 'Hello', content: 'world' },
      {
        'x-transaction-id': tx,
        'x-client-id': 'client_001',
      },
    );
    expect(res.status).toBe(201);
    expect(res.headers.get('x-transaction-id')).toBe(tx);
    expect(res.headers.get('x-idempotent-hit')).toBeNull();
    expect(res.body).toMatchObject({
      title: 'Hello',
      content: 'world',
      organizationId: alice.org.id,
      createdBy: alice.user.id,
      deletedAt: null,
      transactions: { insert: tx, update: null, delete: null },
      lastClientId: 'client_001',
    });
    expect(res.body.id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
  });

  it('makes a transaction id when the client sends none', async () => {
    const res = await write('POST', pages(alice), { title: 'No header' }, {});
    expect(res.status).toBe(201);
    const made = res.headers.get('x-transaction-id');
    expect(made).toMatch(/^[a-z0-9]+-[a-z0-9]{12}$/);
    expect(res.body.transactions.insert).toBe(made);
  });

  it('applies a replayed create once under 20 concurrent duplicates', async () => {
    const tx = txId();
    const id = `page-${tx}`;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        write(
          'POST',
          pages(alice),
          { id, title: 'Concurrent' },
          { 'x-transaction-id': tx, 'x-client-id': 'client_dup' },
        ),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    const hits = answers.filter((a) => a.headers.get('x-idempotent-hit') === 'true');
    expect(hits).toHaveLength(19);
    for (const a of answers) expect(a.body).toEqual(answers[0]!.body);
    const count = await countOf(
      sql`select count(*)::int as count from pages where transactions->>'insert' = ${tx}`,
    );
    expect(count).toBe(1);
  });

  it('applies 20 concurrent duplicates once when the server picks the id', async () => {
    const tx = txId();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        write('POST', pages(alice), { title: 'Server id' }, { 'x-transaction-id': tx }),
      ),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    const count = await countOf(
      sql`select count(*)::int as count from pages where transactions->>'insert' = ${tx}`,
    );
    expect(count).toBe(1);
  });

  it('answers a later replay of a create with 200, the current state and X-Idempotent-Hit', async () => {
    const tx = txId();
    const created = await write('POST', pages(alice), { title: 'v1' }, { 'x-transaction-id': tx });
    await write(
      'PATCH',
      `${pages(alice)}/${created.body.id}`,
      { title: 'v2' },
      { 'x-transaction-id': txId() },
    );
    const replay = await write('POST', pages(alice), { title: 'v1' }, { 'x-transaction-id': tx });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');
    expect(replay.body).toMatchObject({ id: created.body.id, title: 'v2' });
  });

  it('ignores transactions and lastClientId sent in the body', async () => {
    const tx = txId();
    const res = await write(
      'POST',
      pages(alice),
      {
        title: 'Sneaky',
        transactions: { insert: 'forged-tx', update: 'x', delete: null },
        lastClientId: 'forged',
      },
      { 'x-transaction-id': tx, 'x-client-id': 'real_client' },
    );
    expect(res.status).toBe(201);
    expect(res.body.transactions).toEqual({ insert: tx, update: null, delete: null });
    expect(res.body.lastClientId).toBe('real_client');
    const patched = await write(
      'PATCH',
      `${pages(alice)}/${res.body.id}`,
      { title: 'Sneaky 2', transactions: { update: 'forged' }, lastClientId: 'forged' },
      { 'x-transaction-id': 'tx-patch-real', 'x-client-id': 'real_client_2' },
    );
    expect(patched.body.transactions).toEqual({ insert: tx, update: 'tx-patch-real', delete: null });
    expect(patched.body.lastClientId).toBe('real_client_2');
  });

  it('rejects an id that exists under another transaction with ID_TAKEN', async () => {
    const page = await createPage();
    const res = await write(
      'POST',
      pages(alice),
      { id: page.id, title: 'Again' },
      { 'x-transaction-id': txId() },
    );
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: 'conflict', code: 'ID_TAKEN' });
  });

  it('rejects a transaction id reused for another entity or action with TRANSACTION_ID_REUSED', async () => {
    const tx = txId();
    await write('POST', pages(alice), { id: `first-${tx}`, title: 'First' }, { 'x-transaction-id': tx });
    const otherEntity = await write(
      'POST',
      pages(alice),
      { id: `second-${tx}`, title: 'Second' },
      { 'x-transaction-id': tx },
    );
    expect(otherEntity.status).toBe(409);
    expect(otherEntity.body.code).toBe('TRANSACTION_ID_REUSED');
    const otherAction = await write(
      'PATCH',
      `${pages(alice)}/first-${tx}`,
      { title: 'x' },
      { 'x-transaction-id': tx },
    );
    expect(otherAction.status).toBe(409);
    expect(otherAction.body.code).toBe('TRANSACTION_ID_REUSED');
    const count = await countOf(sql`select count(*)::int as count from pages where id = ${`second-${tx}`}`);
    expect(count).toBe(0);
  });
});

describe('tracked updates and deletes', () => {
  it('answers a replayed update as a hit without overwriting a newer update by another client', async () => {
    // No CDC worker runs in this suite: there is no activity for either transaction.
    const page = await createPage('original');
    const path = `${pages(alice)}/${page.id}`;
    const mine = txId();
    const first = await write(
      'PATCH',
      path,
      { title: 'mine' },
      { 'x-transaction-id': mine, 'x-client-id': 'client_a' },
    );
    expect(first.status).toBe(200);
    const theirs = await write(
      'PATCH',
      path,
      { title: 'theirs' },
      { 'x-transaction-id': txId(), 'x-client-id': 'client_b' },
    );
    expect(theirs.status).toBe(200);
    const replay = await write(
      'PATCH',
      path,
      { title: 'mine' },
      { 'x-transaction-id': mine, 'x-client-id': 'client_a' },
    );
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');
    expect(replay.body.title).toBe('theirs');
    const [row] = await sql`select title, last_client_id from pages where id = ${page.id}`;
    expect(row).toEqual({ title: 'theirs', last_client_id: 'client_b' });
    const count = await countOf(sql`select count(*)::int as count from activities`);
    expect(count).toBe(0);
  });

  it('lets exactly one of 20 concurrent PATCHes expecting the same version win', async () => {
    const page = await createPage('contended');
    const path = `${pages(alice)}/${page.id}`;
    const expected = page.transactions.insert;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        write(
          'PATCH',
          path,
          { title: `writer ${i}` },
          {
            'x-transaction-id': txId(),
            'x-expected-transaction-id': expected,
          },
        ),
      ),
    );
    const winners = answers.filter((a) => a.status === 200);
    const losers = answers.filter((a) => a.status === 409);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(19);
    const winner = winners[0]!.body;
    for (const loser of losers) {
      expect(loser.body).toMatchObject({
        error: 'conflict',
        code: 'TRANSACTION_CONFLICT',
        expectedTransaction: expected,
        actualTransaction: winner.transactions.update,
      });
      expect(loser.body.serverVersion).toMatchObject({ id: page.id, title: winner.title });
    }
    const [row] = await sql`select title, transactions from pages where id = ${page.id}`;
    expect(row).toMatchObject({ title: winner.title, transactions: { update: winner.transactions.update } });
    // the losers' transaction ids were not consumed: none of them is recorded as applied
    const count = await countOf(
      sql`select count(*)::int as count from applied_transactions where entity_id = ${page.id}`,
    );
    expect(count).toBe(2);
  });

  it('applies a PATCH whose expected version is current, and uses transactions.update as the next version', async () => {
    const page = await createPage();
    const path = `${pages(alice)}/${page.id}`;
    const first = await write(
      'PATCH',
      path,
      { content: 'one' },
      {
        'x-transaction-id': txId(),
        'x-expected-transaction-id': page.transactions.insert,
      },
    );
    expect(first.status).toBe(200);
    const stale = await write(
      'PATCH',
      path,
      { content: 'stale' },
      {
        'x-transaction-id': txId(),
        'x-expected-transaction-id': page.transactions.insert,
      },
    );
    expect(stale.status).toBe(409);
    const fresh = await write(
      'PATCH',
      path,
      { content: 'two' },
      {
        'x-transaction-id': txId(),
        'x-expected-transaction-id': first.body.transactions.update,
      },
    );
    expect(fresh.status).toBe(200);
    expect(fresh.body.content).toBe('two');
  });

  it('soft-deletes with transactions.delete, hides the row and answers ENTITY_DELETED to later writes', async () => {
    const page = await createPage();
    const path = `${pages(alice)}/${page.id}`;
    const tx = txId();
    const deleted = await write('DELETE', path, undefined, { 'x-transaction-id': tx });
    expect(deleted.status).toBe(200);
    expect(deleted.body.deletedAt).not.toBeNull();
    expect(deleted.body.transactions.delete).toBe(tx);
    expect((await stack.client.request('GET', path, { token: alice.token })).status).toBe(404);
    const list = await stack.client.request('GET', `${pages(alice)}?limit=500`, { token: alice.token });
    expect(list.body.items.map((p: { id: string }) => p.id)).not.toContain(page.id);

    const replay = await write('DELETE', path, undefined, { 'x-transaction-id': tx });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');

    for (const method of ['PATCH', 'DELETE']) {
      const res = await write(method, path, method === 'PATCH' ? { title: 'zombie' } : undefined, {
        'x-transaction-id': txId(),
      });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ENTITY_DELETED');
      expect(res.body.serverVersion).toMatchObject({ id: page.id });
    }
  });

  it('answers 404 for a write to an absent id and does not consume the transaction id', async () => {
    const tx = txId();
    const res = await write(
      'PATCH',
      `${pages(alice)}/absent-page-id`,
      { title: 'x' },
      { 'x-transaction-id': tx },
    );
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
    const count = await countOf(
      sql`select count(*)::int as count from applied_transactions where transaction_id = ${tx}`,
    );
    expect(count).toBe(0);
  });
});

describe('transaction headers', () => {
  it.each([
    ['x-transaction-id', 'short'],
    ['x-transaction-id', 'has spaces in it'],
    ['x-client-id', 'x'.repeat(65)],
    ['x-client-id', 'bad/char'],
  ])('rejects a malformed %s (%s) with INVALID_HEADER and writes nothing', async (header, value) => {
    const title = `invalid-header-${txId()}`;
    const res = await write('POST', pages(alice), { title }, { [header]: value });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'bad_request', code: 'INVALID_HEADER' });
    const count = await countOf(sql`select count(*)::int as count from pages where title = ${title}`);
    expect(count).toBe(0);
  });

  it('rejects a malformed X-Expected-Transaction-Id with INVALID_HEADER', async () => {
    const page = await createPage();
    const res = await write(
      'PATCH',
      `${pages(alice)}/${page.id}`,
      { title: 'x' },
      { 'x-expected-transaction-id': '!!' },
    );
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_HEADER');
  });
});

describe('lists', () => {
  it('pages through live rows in a stable order with nextCursor', async () => {
    const member = await stack.client.newMember();
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await write(
        'POST',
        pages(member),
        { title: `p${i}` },
        { 'x-transaction-id': txId() },
        member.token,
      );
      created.push(res.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
      const res = await stack.client.request('GET', `${pages(member)}${query}`, { token: member.token });
      expect(res.status).toBe(200);
      seen.push(...res.body.items.map((p: { id: string }) => p.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(created);
  });

  it('rejects an unknown cursor and an out-of-range limit with VALIDATION_FAILED', async () => {
    for (const query of ['?cursor=unknown-cursor-id', '?limit=0', '?limit=abc', '?limit=100000']) {
      const res = await stack.client.request('GET', `${pages(alice)}${query}`, { token: alice.token });
      expect(res.status, query).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
  });
});

/**
 * Attachments go through the same tracked path as pages (transaction stamping, idempotency,
 * optimistic locks, soft delete), plus their own fields and the page reference check.
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, countOf, expectError, issuePaths, txId, writeCounts } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;
let page: any;

const attachmentsPath = (m: Member = alice) => `/api/organizations/${m.org.slug}/attachments`;
const pagesPath = (m: Member = alice) => `/api/organizations/${m.org.slug}/pages`;
const validBody = (overrides: Record<string, unknown> = {}) => ({
  filename: 'diagram.png',
  contentType: 'image/png',
  size: 2048,
  url: 'https://cdn.example.com/diagram.png',
  ...overrides,
});

function write(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  token = alice.token,
) {
  return stack.client.request(method, path, {
    token,
    body,
    headers: { 'x-transaction-id': txId(), ...headers },
  });
}
async function createAttachment(
  overrides: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const res = await write('POST', attachmentsPath(), validBody(overrides), headers);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}
async function rowOf(id: string) {
  const [row] = await sql`select * from attachments where id = ${id}`;
  return row;
}

beforeAll(async () => {
  stack = await startTestStack();
  sql = connectDb(stack.cluster.url);
  alice = await stack.client.newMember();
  page = (await write('POST', pagesPath(), { title: 'Page with files' })).body;
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

describe('attachment entity JSON', () => {
  it('creates an attachment: 201 with its fields and the tracked bookkeeping, stamped from the headers', async () => {
    const tx = txId();
    const res = await write('POST', attachmentsPath(), validBody({ pageId: page.id }), {
      'x-transaction-id': tx,
      'x-client-id': 'client_files',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-transaction-id')).toBe(tx);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
      organizationId: alice.org.id,
      pageId: page.id,
      filename: 'diagram.png',
      contentType: 'image/png',
      size: 2048,
      url: 'https://cdn.example.com/diagram.png',
      createdAt: expect.any(String),
      createdBy: alice.user.id,
      modifiedAt: null,
      modifiedBy: null,
      deletedAt: null,
      transactions: { insert: tx, update: null, delete: null },
      lastClientId: 'client_files',
    });
    const get = await stack.client.request('GET', `${attachmentsPath()}/${res.body.id}`, {
      token: alice.token,
    });
    expect(get.status).toBe(200);
    expect(get.body).toEqual(res.body);
  });

  it('accepts a client id and no page (pageId null)', async () => {
    const id = `att_${txId()}`;
    const created = await createAttachment({ id });
    expect(created).toMatchObject({ id, pageId: null });
    expect((await rowOf(id))!.page_id).toBeNull();
  });

  it('keeps sizes up to Number.MAX_SAFE_INTEGER exact (a bigint column, a JSON number)', async () => {
    for (const size of [0, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      const created = await createAttachment({ size });
      expect(created.size).toBe(size);
      const read = await stack.client.request('GET', `${attachmentsPath()}/${created.id}`, {
        token: alice.token,
      });
      expect(read.body.size).toBe(size);
      expect(typeof read.body.size).toBe('number');
    }
  });

  it('ignores transactions, lastClientId and bookkeeping fields sent in the body', async () => {
    const tx = txId();
    const res = await write(
      'POST',
      attachmentsPath(),
      validBody({
        transactions: { insert: 'forged', update: 'forged', delete: null },
        lastClientId: 'forged',
        createdBy: 'someone-else',
        deletedAt: '2020-01-01T00:00:00.000Z',
        organizationId: 'another-org',
      }),
      { 'x-transaction-id': tx },
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      transactions: { insert: tx, update: null, delete: null },
      lastClientId: null,
      createdBy: alice.user.id,
      deletedAt: null,
      organizationId: alice.org.id,
    });
  });
});

describe('attachment field validation', () => {
  it.each([
    ['a missing filename', { filename: undefined }, 'filename'],
    ['a blank filename', { filename: '   ' }, 'filename'],
    ['a filename over 255 characters', { filename: `${'f'.repeat(252)}.png` }, 'filename'],
    ['a missing contentType', { contentType: undefined }, 'contentType'],
    ['a contentType without a subtype', { contentType: 'image' }, 'contentType'],
    ['a contentType with a trailing slash', { contentType: 'image/' }, 'contentType'],
    ['a contentType with spaces', { contentType: 'image / png' }, 'contentType'],
    ['a contentType over 255 characters', { contentType: `application/${'x'.repeat(250)}` }, 'contentType'],
    ['a missing size', { size: undefined }, 'size'],
    ['a negative size', { size: -1 }, 'size'],
    ['a fractional size', { size: 1.5 }, 'size'],
    ['a size as a string', { size: '2048' }, 'size'],
    ['a size beyond MAX_SAFE_INTEGER', { size: 2 ** 53 }, 'size'],
    ['a missing url', { url: undefined }, 'url'],
    ['a url that is not a URL', { url: 'not a url' }, 'url'],
    ['a javascript: url', { url: 'javascript:alert(1)' }, 'url'],
    ['an ftp url', { url: 'ftp://files.example.com/a.png' }, 'url'],
    ['a data: url', { url: 'data:image/png;base64,AAAA' }, 'url'],
    ['a url over 2048 characters', { url: `https://example.com/${'u'.repeat(2048)}` }, 'url'],
    ['a malformed pageId', { pageId: 'bad id' }, 'pageId'],
    ['a numeric pageId', { pageId: 12345678 }, 'pageId'],
  ])(
    'refuses a create with %s: 400 VALIDATION_FAILED naming the field, nothing written',
    async (_label, overrides, field) => {
      const before = await writeCounts(sql);
      const tx = txId();
      const res = await write('POST', attachmentsPath(), validBody(overrides), { 'x-transaction-id': tx });
      expectError(res, 400, 'VALIDATION_FAILED');
      expect(new Set(issuePaths(res))).toEqual(new Set([field]));
      expect(await writeCounts(sql)).toEqual(before);
      const count = await countOf(
        sql`select count(*)::int as count from applied_transactions where transaction_id = ${tx}`,
      );
      expect(count).toBe(0);
    },
  );

  it.each([
    ['image/svg+xml'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['text/plain; charset=utf-8'],
  ])('accepts the content type %s', async (contentType) => {
    expect((await createAttachment({ contentType })).contentType).toBe(contentType);
  });

  it('trims the filename', async () => {
    expect((await createAttachment({ filename: '  spaced.png  ' })).filename).toBe('spaced.png');
  });

  it('validates fields on update too and leaves the attachment unchanged', async () => {
    const attachment = await createAttachment();
    const before = await rowOf(attachment.id);
    for (const patch of [
      { size: -5 },
      { url: 'ftp://x.example/a' },
      { contentType: 'nope' },
      { filename: '' },
      { size: null },
    ]) {
      const res = await write('PATCH', `${attachmentsPath()}/${attachment.id}`, patch);
      expectError(res, 400, 'VALIDATION_FAILED');
      expect(issuePaths(res)).toEqual(Object.keys(patch));
    }
    expect(await rowOf(attachment.id)).toEqual(before);
  });
});

describe('pageId must be a live page of the same organization', () => {
  async function expectRejectedCreate(pageId: string) {
    const before = await writeCounts(sql);
    const res = await write('POST', attachmentsPath(), validBody({ pageId }));
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual(['pageId']);
    expect(await writeCounts(sql)).toEqual(before);
  }

  it('refuses a pageId that names no page', async () => {
    await expectRejectedCreate('no-such-page-id');
  });

  it('refuses a pageId of a soft-deleted page', async () => {
    const doomed = (await write('POST', pagesPath(), { title: 'doomed' })).body;
    expect((await write('DELETE', `${pagesPath()}/${doomed.id}`)).status).toBe(200);
    await expectRejectedCreate(doomed.id);
  });

  it("refuses a pageId of another organization's page", async () => {
    const bob = await stack.client.newMember();
    const theirs = (await write('POST', pagesPath(bob), { title: 'not yours' }, {}, bob.token)).body;
    expect(theirs.id).toBeDefined();
    await expectRejectedCreate(theirs.id);
  });

  it("refuses an attachment's id as pageId (a page, not any tracked entity)", async () => {
    const other = await createAttachment();
    await expectRejectedCreate(other.id);
  });

  it('moves an attachment between live pages and detaches it with null; refuses a dead page on update', async () => {
    const attachment = await createAttachment({ pageId: page.id });
    const second = (await write('POST', pagesPath(), { title: 'second page' })).body;
    const moved = await write('PATCH', `${attachmentsPath()}/${attachment.id}`, { pageId: second.id });
    expect(moved.status).toBe(200);
    expect(moved.body.pageId).toBe(second.id);

    const gone = (await write('POST', pagesPath(), { title: 'gone' })).body;
    await write('DELETE', `${pagesPath()}/${gone.id}`);
    const before = await rowOf(attachment.id);
    const refused = await write('PATCH', `${attachmentsPath()}/${attachment.id}`, {
      pageId: gone.id,
      filename: 'x.png',
    });
    expectError(refused, 400, 'VALIDATION_FAILED');
    expect(await rowOf(attachment.id)).toEqual(before);

    const detached = await write('PATCH', `${attachmentsPath()}/${attachment.id}`, { pageId: null });
    expect(detached.status).toBe(200);
    expect(detached.body.pageId).toBeNull();
    expect((await rowOf(attachment.id))!.page_id).toBeNull();
  });
});

describe('attachments on the tracked path', () => {
  it('updates with the transaction headers and uses transactions.update as the next version', async () => {
    const attachment = await createAttachment();
    const path = `${attachmentsPath()}/${attachment.id}`;
    const tx = txId();
    const res = await write(
      'PATCH',
      path,
      { filename: 'renamed.png', size: 4096 },
      {
        'x-transaction-id': tx,
        'x-client-id': 'client_upd',
        'x-expected-transaction-id': attachment.transactions.insert,
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-transaction-id')).toBe(tx);
    expect(res.body).toMatchObject({
      filename: 'renamed.png',
      size: 4096,
      contentType: 'image/png',
      url: attachment.url,
      modifiedBy: alice.user.id,
      lastClientId: 'client_upd',
      transactions: { insert: attachment.transactions.insert, update: tx, delete: null },
    });
    expect(res.body.modifiedAt).not.toBeNull();
    const row = await rowOf(attachment.id);
    expect(row).toMatchObject({ filename: 'renamed.png', size: '4096', last_client_id: 'client_upd' });
  });

  it('answers TRANSACTION_CONFLICT with serverVersion to a stale expected version, changing nothing', async () => {
    const attachment = await createAttachment();
    const path = `${attachmentsPath()}/${attachment.id}`;
    const first = await write('PATCH', path, { filename: 'first.png' });
    const before = await rowOf(attachment.id);
    const stale = await write(
      'PATCH',
      path,
      { filename: 'stale.png' },
      { 'x-expected-transaction-id': attachment.transactions.insert },
    );
    expectError(stale, 409, 'TRANSACTION_CONFLICT', [
      'serverVersion',
      'expectedTransaction',
      'actualTransaction',
    ]);
    expect(stale.body.serverVersion).toEqual(first.body);
    expect(stale.body.actualTransaction).toBe(first.body.transactions.update);
    expect(await rowOf(attachment.id)).toEqual(before);
  });

  it('lets exactly one of 10 concurrent updates expecting the same version win', async () => {
    const attachment = await createAttachment();
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        write(
          'PATCH',
          `${attachmentsPath()}/${attachment.id}`,
          { size: i },
          { 'x-expected-transaction-id': attachment.transactions.insert },
        ),
      ),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(9);
    const winner = answers.find((a) => a.status === 200)!.body;
    expect(Number((await rowOf(attachment.id))!.size)).toBe(winner.size);
  });

  it('applies a replayed create once and answers the replay 200 with X-Idempotent-Hit', async () => {
    const tx = txId();
    const body = validBody({ id: `att_${tx}` });
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => write('POST', attachmentsPath(), body, { 'x-transaction-id': tx })),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    const replays = answers.filter((a) => a.status === 200);
    expect(replays).toHaveLength(9);
    for (const r of replays) expect(r.headers.get('x-idempotent-hit')).toBe('true');
    const count = await countOf(
      sql`select count(*)::int as count from attachments where transactions->>'insert' = ${tx}`,
    );
    expect(count).toBe(1);
  });

  it('answers replays of a create and an update 200 with X-Idempotent-Hit even after their page was deleted', async () => {
    // a replay is the same mutation, already applied: it is answered, not validated again
    const doomed = (await write('POST', pagesPath(), { title: 'attached, then deleted' })).body;
    const createTx = txId();
    const body = validBody({ pageId: doomed.id });
    const created = await write('POST', attachmentsPath(), body, { 'x-transaction-id': createTx });
    expect(created.status).toBe(201);
    const updateTx = txId();
    const patch = { pageId: doomed.id, filename: 'moved.png' };
    const other = await createAttachment();
    const updated = await write('PATCH', `${attachmentsPath()}/${other.id}`, patch, {
      'x-transaction-id': updateTx,
    });
    expect(updated.status).toBe(200);
    expect((await write('DELETE', `${pagesPath()}/${doomed.id}`)).status).toBe(200);

    const before = await writeCounts(sql);
    const createReplay = await write('POST', attachmentsPath(), body, { 'x-transaction-id': createTx });
    expect(createReplay.status, JSON.stringify(createReplay.body)).toBe(200);
    expect(createReplay.headers.get('x-idempotent-hit')).toBe('true');
    expect(createReplay.body).toMatchObject({ id: created.body.id, pageId: doomed.id });
    const updateReplay = await write('PATCH', `${attachmentsPath()}/${other.id}`, patch, {
      'x-transaction-id': updateTx,
    });
    expect(updateReplay.status, JSON.stringify(updateReplay.body)).toBe(200);
    expect(updateReplay.headers.get('x-idempotent-hit')).toBe('true');
    expect(updateReplay.body).toEqual(updated.body);
    expect(await writeCounts(sql)).toEqual(before);
  });

  it('soft-deletes with transactions.delete, hides it from get and list, and answers ENTITY_DELETED afterwards', async () => {
    const attachment = await createAttachment();
    const path = `${attachmentsPath()}/${attachment.id}`;
    const tx = txId();
    const deleted = await write('DELETE', path, undefined, { 'x-transaction-id': tx });
    expect(deleted.status).toBe(200);
    expect(deleted.body.deletedAt).not.toBeNull();
    expect(deleted.body.transactions).toEqual({
      insert: attachment.transactions.insert,
      update: null,
      delete: tx,
    });
    expect((await rowOf(attachment.id))!.deleted_at).not.toBeNull();
    expectError(await stack.client.request('GET', path, { token: alice.token }), 404, 'NOT_FOUND');
    const list = await stack.client.request('GET', `${attachmentsPath()}?limit=500`, { token: alice.token });
    expect(list.body.items.map((a: any) => a.id)).not.toContain(attachment.id);

    const replay = await write('DELETE', path, undefined, { 'x-transaction-id': tx });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');
    const zombie = await write('PATCH', path, { filename: 'zombie.png' });
    expect(zombie.status).toBe(409);
    expect(zombie.body.code).toBe('ENTITY_DELETED');
  });

  it('lists live attachments in a stable order with a cursor', async () => {
    const bob = await stack.client.newMember();
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await write(
        'POST',
        attachmentsPath(bob),
        validBody({ filename: `f${i}.png` }),
        {},
        bob.token,
      );
      created.push(res.body.id);
    }
    await write('DELETE', `${attachmentsPath(bob)}/${created[2]}`, undefined, {}, bob.token);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const res = await stack.client.request('GET', `${attachmentsPath(bob)}${query}`, { token: bob.token });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['items', 'nextCursor']);
      seen.push(...res.body.items.map((a: any) => a.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(created.filter((_, i) => i !== 2));
  });
});

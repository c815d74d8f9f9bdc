/**
 * Guarantee 7 on the REST routes: whoever asks, and whatever ids, slugs, bodies or headers they
 * send, organization A's data is neither answered nor changed through organization B.
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiResponse, type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, countOf, expectError, issuePaths, txId, writeCounts } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
/** Organization A and its data. */
let alice: Member;
let pageA: any;
let deletedPageA: any;
let attachmentA: any;
let pageTxA: string;
/** Organization B, the one asking. */
let bob: Member;
let pageB: any;
let attachmentB: any;

const orgPath = (org: string) => `/api/organizations/${org}`;
const attachmentBody = (pageId?: string | null) => ({
  filename: 'plan.pdf',
  contentType: 'application/pdf',
  size: 1234,
  url: 'https://files.example.com/plan.pdf',
  ...(pageId === undefined ? {} : { pageId }),
});

async function write(token: string, method: string, path: string, body?: unknown, headers = {}) {
  return stack.client.request(method, path, {
    token,
    body,
    headers: { 'x-transaction-id': txId(), ...headers },
  });
}

beforeAll(async () => {
  stack = await startTestStack();
  sql = connectDb(stack.cluster.url);
  [alice, bob] = await Promise.all([stack.client.newMember(), stack.client.newMember()]);
  pageTxA = txId('a-page');
  pageA = (
    await write(
      alice.token,
      'POST',
      `${orgPath(alice.org.id)}/pages`,
      { title: 'SECRET-A title', content: 'SECRET-A content' },
      {
        'x-transaction-id': pageTxA,
        'x-client-id': 'client_alice',
      },
    )
  ).body;
  deletedPageA = (
    await write(alice.token, 'POST', `${orgPath(alice.org.id)}/pages`, { title: 'SECRET-A deleted' })
  ).body;
  expect(
    (await write(alice.token, 'DELETE', `${orgPath(alice.org.id)}/pages/${deletedPageA.id}`)).status,
  ).toBe(200);
  attachmentA = (
    await write(alice.token, 'POST', `${orgPath(alice.org.id)}/attachments`, attachmentBody(pageA.id))
  ).body;
  pageB = (await write(bob.token, 'POST', `${orgPath(bob.org.id)}/pages`, { title: 'B page' })).body;
  attachmentB = (
    await write(bob.token, 'POST', `${orgPath(bob.org.id)}/attachments`, attachmentBody(pageB.id))
  ).body;
  for (const entity of [pageA, deletedPageA, attachmentA, pageB, attachmentB])
    expect(entity.id).toBeDefined();
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

/** Everything stored about organization A, to compare before and after B's attempts. */
async function snapshotOfA() {
  const org = alice.org.id;
  return {
    organization: await sql`select * from organizations where id = ${org}`,
    memberships: await sql`select * from memberships where organization_id = ${org} order by user_id`,
    pages: await sql`select * from pages where organization_id = ${org} order by id`,
    attachments: await sql`select * from attachments where organization_id = ${org} order by id`,
    applied:
      await sql`select * from applied_transactions where organization_id = ${org} order by transaction_id`,
  };
}

/** Nothing of A in an answer to B: no id, slug, title or content of A's. */
function expectNothingOfA(res: ApiResponse) {
  const text = JSON.stringify(res.body) ?? '';
  expect(text).not.toContain('SECRET-A');
  for (const secret of [alice.user.id, alice.user.email, pageTxA]) expect(text).not.toContain(secret);
}

describe("B's token on A's organization", () => {
  const routes = (): [string, string, unknown?][] => [
    ['GET', ''],
    ['POST', '/members', { email: bob.user.email, role: 'admin' }],
    ['GET', '/pages'],
    ['GET', '/pages?limit=500'],
    ['POST', '/pages', { title: 'planted by B' }],
    ['GET', `/pages/${pageA.id}`],
    ['PATCH', `/pages/${pageA.id}`, { title: 'changed by B' }],
    ['DELETE', `/pages/${pageA.id}`],
    ['GET', '/attachments'],
    ['POST', '/attachments', attachmentBody(pageA.id)],
    ['GET', `/attachments/${attachmentA.id}`],
    ['PATCH', `/attachments/${attachmentA.id}`, { filename: 'changed-by-b.pdf' }],
    ['DELETE', `/attachments/${attachmentA.id}`],
  ];

  it.each([
    ['id', () => alice.org.id],
    ['slug', () => alice.org.slug],
  ])(
    "answers 404 NOT_FOUND on every route addressed by A's %s, exactly like a missing organization, and changes nothing",
    async (_label, orgOfA) => {
      const before = await snapshotOfA();
      const counts = await writeCounts(sql);
      const missing = await stack.client.request('GET', orgPath('no-such-organization'), {
        token: bob.token,
      });
      for (const [method, suffix, body] of routes()) {
        const res = await write(bob.token, method, `${orgPath(orgOfA())}${suffix}`, body, {
          'x-expected-transaction-id': pageA.transactions.insert,
        });
        expect(res.status, `${method} ${suffix}`).toBe(404);
        expectError(res, 404, 'NOT_FOUND');
        expect(res.body).toEqual(missing.body);
        expectNothingOfA(res);
      }
      expect(await snapshotOfA()).toEqual(before);
      expect(await writeCounts(sql)).toEqual(counts);
    },
  );

  it("answers 404 on every organization route of the OpenAPI document, also routes added later, while A's own token reaches them", async () => {
    const doc = (await stack.client.request('GET', '/api/openapi.json')).body;
    const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .filter(([path]) => path.startsWith('/api/organizations/{org}'))
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => [method.toUpperCase(), path] as const),
      );
    // the routes of docs/API.md's scope at least; anything else under {org} is checked just the same
    expect(operations.length).toBeGreaterThanOrEqual(12);
    const fill = (path: string, org: string) =>
      path
        .replace('{org}', org)
        .replace('{id}', path.includes('/attachments/') ? attachmentA.id : pageA.id)
        .replace('{transactionId}', pageTxA)
        .replace(/\{[^}]+\}/g, 'some-parameter');
    const bodyFor = (path: string) =>
      path.endsWith('/members')
        ? { email: bob.user.email, role: 'admin' }
        : path.includes('/attachments')
          ? attachmentBody(pageA.id)
          : { title: 'by B' };
    const before = await snapshotOfA();
    for (const [method, path] of operations) {
      const withBody = method === 'POST' || method === 'PATCH';
      for (const org of [alice.org.id, alice.org.slug]) {
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 5000);
        try {
          const res = await fetch(`${stack.api.url}${fill(path, org)}?offset=-1`, {
            method,
            headers: {
              authorization: `Bearer ${bob.token}`,
              ...(withBody ? { 'content-type': 'application/json' } : {}),
            },
            body: withBody ? JSON.stringify(bodyFor(path)) : undefined,
            signal: controller.signal,
          });
          const text = await res.text();
          expect(res.status, `${method} ${path} as ${org}: ${text.slice(0, 200)}`).toBe(404);
          expect(text).not.toContain('SECRET-A');
          expect(text).not.toContain(pageA.id);
        } finally {
          clearTimeout(timer);
        }
      }
      if (method === 'GET' && !path.includes('{transactionId}')) {
        // control: the same route is really there for a member (streams: the headers suffice)
        const controller = new AbortController();
        const res = await fetch(`${stack.api.url}${fill(path, alice.org.id)}?offset=-1`, {
          headers: { authorization: `Bearer ${alice.token}` },
          signal: controller.signal,
        });
        expect(res.status, `${method} ${path} as a member`).toBeLessThan(400);
        controller.abort();
      }
    }
    expect(await snapshotOfA()).toEqual(before);
  });

  it('keeps 404 when A is named with different letter case, padding or encoding', async () => {
    for (const ref of [
      alice.org.slug.toUpperCase(),
      ` ${alice.org.slug}`,
      encodeURIComponent(`${alice.org.slug}/`),
      `${alice.org.slug}%00`,
    ]) {
      const res = await stack.client.request('GET', `${orgPath(ref)}/pages`, { token: bob.token });
      expect(res.status, ref).toBe(404);
      expectNothingOfA(res);
    }
  });
});

describe("A's entities through B's own paths", () => {
  const entities = () =>
    [
      ['pages', pageA, { title: 'changed by B' }],
      ['pages (soft-deleted in A)', deletedPageA, { title: 'revived by B' }],
      ['attachments', attachmentA, { filename: 'changed-by-b.pdf' }],
    ] as const;
  const collectionOf = (label: string) => label.split(' ')[0]!;

  it("answers 404 to GET, PATCH and DELETE of A's ids, with or without A's version as the expected one, and changes nothing", async () => {
    const before = await snapshotOfA();
    const counts = await writeCounts(sql);
    for (const [label, entity, patch] of entities()) {
      const path = `${orgPath(bob.org.slug)}/${collectionOf(label)}/${entity.id}`;
      for (const headers of [
        {},
        { 'x-expected-transaction-id': entity.transactions.insert },
        { 'x-expected-transaction-id': 'not-the-version' },
      ]) {
        for (const [method, body] of [['GET'], ['PATCH', patch], ['DELETE']] as const) {
          const res = await write(bob.token, method, path, body, headers);
          // not 409 ENTITY_DELETED / TRANSACTION_CONFLICT: those would confirm the id and show its serverVersion
          expect(res.status, `${method} ${label} ${JSON.stringify(headers)}`).toBe(404);
          expectError(res, 404, 'NOT_FOUND');
          expectNothingOfA(res);
        }
      }
    }
    expect(await snapshotOfA()).toEqual(before);
    expect(await writeCounts(sql)).toEqual(counts);
  });

  it("answers 404 to A's page id through B's attachments path and A's attachment id through B's pages path", async () => {
    for (const [collection, id] of [
      ['attachments', pageA.id],
      ['pages', attachmentA.id],
    ]) {
      const res = await stack.client.request('GET', `${orgPath(bob.org.id)}/${collection}/${id}`, {
        token: bob.token,
      });
      expectError(res, 404, 'NOT_FOUND');
    }
  });

  it("refuses a create that reuses A's entity id with ID_TAKEN, showing nothing of A and leaving A's row alone", async () => {
    // ids are one global space (docs/API.md: an id that exists under another transaction is ID_TAKEN)
    const before = await snapshotOfA();
    for (const [collection, entity, body] of [
      ['pages', pageA, { title: 'B claims the id' }],
      ['attachments', attachmentA, attachmentBody(null)],
    ] as const) {
      const res = await write(bob.token, 'POST', `${orgPath(bob.org.id)}/${collection}`, {
        ...body,
        id: entity.id,
      });
      expectError(res, 409, 'ID_TAKEN');
      expectNothingOfA(res);
    }
    expect(await snapshotOfA()).toEqual(before);
  });

  it("answers B replaying A's transaction id with TRANSACTION_ID_REUSED, never with A's entity", async () => {
    const before = await snapshotOfA();
    for (const [method, path, body] of [
      ['POST', `${orgPath(bob.org.id)}/pages`, { title: 'B reuses A tx' }],
      ['POST', `${orgPath(bob.org.id)}/pages`, { id: pageA.id, title: 'B reuses A tx and id' }],
      ['PATCH', `${orgPath(bob.org.id)}/pages/${pageB.id}`, { title: 'B reuses A tx' }],
      ['DELETE', `${orgPath(bob.org.id)}/pages/${pageB.id}`],
    ] as const) {
      const res = await write(bob.token, method, path, body, { 'x-transaction-id': pageTxA });
      expect(res.status, `${method} ${path}`).toBe(409);
      expectError(res, 409, 'TRANSACTION_ID_REUSED');
      expect(res.headers.get('x-idempotent-hit')).toBeNull();
      expectNothingOfA(res);
    }
    expect(await snapshotOfA()).toEqual(before);
    const [row] = await sql`select title, deleted_at from pages where id = ${pageB.id}`;
    expect(row).toEqual({ title: 'B page', deleted_at: null });
  });

  it("answers B undoing A's transaction through B's own path with 404, exactly like an unknown transaction", async () => {
    const before = await snapshotOfA();
    const undo = (transactionId: string) =>
      write(bob.token, 'POST', `${orgPath(bob.org.id)}/transactions/${transactionId}/undo`);
    const unknown = await undo(txId('never-applied'));
    expectError(unknown, 404, 'NOT_FOUND');
    for (const transactionId of [
      pageTxA,
      deletedPageA.transactions.insert,
      attachmentA.transactions.insert,
    ]) {
      const res = await undo(transactionId);
      expect(res.body).toEqual(unknown.body);
      expectNothingOfA(res);
    }
    expect(await snapshotOfA()).toEqual(before);
  });

  it("refuses A's entity id as B's list cursor exactly like an unknown cursor", async () => {
    for (const collection of ['pages', 'attachments']) {
      const unknown = await stack.client.request(
        'GET',
        `${orgPath(bob.org.id)}/${collection}?cursor=never-existed-id`,
        {
          token: bob.token,
        },
      );
      expectError(unknown, 400, 'VALIDATION_FAILED');
      const id = collection === 'pages' ? pageA.id : attachmentA.id;
      const res = await stack.client.request('GET', `${orgPath(bob.org.id)}/${collection}?cursor=${id}`, {
        token: bob.token,
      });
      expect(res.status).toBe(400);
      expect(res.body).toEqual(unknown.body);
    }
  });

  it("lists only B's live entities in B's lists", async () => {
    for (const [collection, mine] of [
      ['pages', pageB],
      ['attachments', attachmentB],
    ]) {
      const res = await stack.client.request('GET', `${orgPath(bob.org.slug)}/${collection}?limit=500`, {
        token: bob.token,
      });
      expect(res.status).toBe(200);
      expect(res.body.items.map((e: any) => e.id)).toContain(mine.id);
      for (const item of res.body.items) expect(item.organizationId).toBe(bob.org.id);
      expectNothingOfA(res);
    }
  });

  it('scopes entities by the organization in the path, also for a user who belongs to both', async () => {
    const carol = await stack.client.signUp();
    for (const m of [alice, bob]) {
      const added = await stack.client.request('POST', `${orgPath(m.org.id)}/members`, {
        token: m.token,
        body: { email: carol.user.email, role: 'admin' },
      });
      expect(added.status).toBe(201);
    }
    const before = await snapshotOfA();
    const path = `${orgPath(bob.org.id)}/pages/${pageA.id}`;
    expectError(await stack.client.request('GET', path, { token: carol.token }), 404, 'NOT_FOUND');
    expectError(await write(carol.token, 'PATCH', path, { title: 'cross-org by carol' }), 404, 'NOT_FOUND');
    expectError(await write(carol.token, 'DELETE', path), 404, 'NOT_FOUND');
    const attachment = await write(
      carol.token,
      'POST',
      `${orgPath(bob.org.id)}/attachments`,
      attachmentBody(pageA.id),
    );
    expectError(attachment, 400, 'VALIDATION_FAILED');
    const { memberships: _, ...rest } = before;
    const { memberships: __, ...after } = await snapshotOfA();
    expect(after).toEqual(rest);
    // and through A's own path she reads it
    expect(
      (
        await stack.client.request('GET', `${orgPath(alice.org.id)}/pages/${pageA.id}`, {
          token: carol.token,
        })
      ).status,
    ).toBe(200);
  });
});

describe('organization fields in bodies', () => {
  it("ignores an organizationId in a create or update body: the path's organization wins", async () => {
    const created = await write(bob.token, 'POST', `${orgPath(bob.org.id)}/pages`, {
      title: 'B page with A org in body',
      organizationId: alice.org.id,
    });
    expect(created.status).toBe(201);
    expect(created.body.organizationId).toBe(bob.org.id);
    const patched = await write(bob.token, 'PATCH', `${orgPath(bob.org.id)}/pages/${created.body.id}`, {
      title: 'still B',
      organizationId: alice.org.id,
      id: pageA.id,
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: created.body.id, organizationId: bob.org.id, title: 'still B' });
    const [row] = await sql`select organization_id from pages where id = ${created.body.id}`;
    expect(row!.organization_id).toBe(bob.org.id);
  });
});

describe("attachments pointing at another organization's page", () => {
  it.each([
    ['a live page of A', () => pageA.id],
    ['a soft-deleted page of A', () => deletedPageA.id],
  ])(
    'refuses a create with pageId of %s with 400 VALIDATION_FAILED and writes nothing',
    async (_label, pageId) => {
      const before = await writeCounts(sql);
      const tx = txId();
      const res = await write(
        bob.token,
        'POST',
        `${orgPath(bob.org.id)}/attachments`,
        attachmentBody(pageId()),
        {
          'x-transaction-id': tx,
        },
      );
      expectError(res, 400, 'VALIDATION_FAILED');
      expect(issuePaths(res)).toEqual(['pageId']);
      expectNothingOfA(res);
      expect(await writeCounts(sql)).toEqual(before);
      const count = await countOf(
        sql`select count(*)::int as count from applied_transactions where transaction_id = ${tx}`,
      );
      expect(count).toBe(0);
    },
  );

  it("refuses an update moving B's attachment onto A's page and leaves the attachment as it was", async () => {
    const before = await sql`select * from attachments where id = ${attachmentB.id}`;
    const counts = await writeCounts(sql);
    const res = await write(bob.token, 'PATCH', `${orgPath(bob.org.id)}/attachments/${attachmentB.id}`, {
      pageId: pageA.id,
      filename: 'moved.pdf',
    });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(await sql`select * from attachments where id = ${attachmentB.id}`).toEqual(before);
    expect(await writeCounts(sql)).toEqual(counts);
  });
});

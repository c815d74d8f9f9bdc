/**
 * Every error code of docs/API.md (auth, organizations, pages, attachments) with its exact JSON, and
 * the service routes (health, metrics, OpenAPI document, docs page).
 */
import { sleep } from '@sync/db/timers';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../src/app.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, countOf, expectError, issuePaths, txId, writeCounts } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;

beforeAll(async () => {
  stack = await startTestStack();
  sql = connectDb(stack.cluster.url);
  alice = await stack.client.newMember();
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

const pagesPath = () => `/api/organizations/${alice.org.slug}/pages`;

function send(method: string, path: string, options: Parameters<TestStack['client']['request']>[2] = {}) {
  return stack.client.request(method, path, { token: alice.token, ...options });
}
async function createPage(title = 'A page') {
  const res = await send('POST', pagesPath(), { body: { title }, headers: { 'x-transaction-id': txId() } });
  expect(res.status).toBe(201);
  return res.body;
}
async function currentPage(id: string) {
  const res = await send('GET', `${pagesPath()}/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

describe('VALIDATION_FAILED', () => {
  it.each([
    ['a missing title', { content: 'no title' }, ['title']],
    ['an empty title', { title: '' }, ['title']],
    ['a blank title', { title: '   ' }, ['title']],
    ['a numeric title', { title: 42 }, ['title']],
    ['a null title', { title: null }, ['title']],
    ['an object as content', { title: 'ok', content: { nested: true } }, ['content']],
    ['a title over 500 characters', { title: 'x'.repeat(501) }, ['title']],
    ['a malformed client id', { id: 'bad id!', title: 'ok' }, ['id']],
    ['a client id that is too short', { id: 'short', title: 'ok' }, ['id']],
  ])('answers 400 with issues for %s and writes nothing', async (_label, body, paths) => {
    const before = await writeCounts(sql);
    const res = await send('POST', pagesPath(), { body, headers: { 'x-transaction-id': txId() } });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual(paths);
    expect(await writeCounts(sql)).toEqual(before);
  });

  it.each([
    ['an array', [{ title: 'x' }]],
    ['a string', 'title'],
    ['null', null],
    ['a number', 7],
  ])('answers 400 with issues when the body is %s instead of an object', async (_label, body) => {
    const res = await send('POST', pagesPath(), {
      rawBody: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expectError(res, 400, 'VALIDATION_FAILED');
  });

  it.each([
    ['truncated JSON', '{"title": "x"'],
    ['single quotes', "{'title': 'x'}"],
    ['an empty body', ''],
    ['trailing garbage', '{"title": "x"} trailing'],
  ])('answers 400 with issues for malformed JSON (%s) and writes nothing', async (_label, rawBody) => {
    const before = await writeCounts(sql);
    const res = await send('POST', pagesPath(), { rawBody, headers: { 'content-type': 'application/json' } });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(await writeCounts(sql)).toEqual(before);
  });

  it.each([
    ['text/plain', { 'content-type': 'text/plain' }],
    ['form data', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['no content type at all', {}],
  ])(
    'answers 400 with issues for a JSON body sent as %s, on creates, updates and sign-up alike',
    async (_label, headers) => {
      const page = await createPage('content type');
      const before = await writeCounts(sql);
      for (const [method, path, body] of [
        ['POST', pagesPath(), { title: 'not json' }],
        ['PATCH', `${pagesPath()}/${page.id}`, { title: 'not json' }],
        ['POST', '/api/auth/sign-up', { email: 'ct@example.com', password: 'long enough password' }],
        ['POST', '/api/organizations', { name: 'ct', slug: 'content-type-org' }],
      ] as const) {
        const res = await send(method, path, { rawBody: JSON.stringify(body), headers });
        expect(res.status, `${method} ${path}`).toBe(400);
        expectError(res, 400, 'VALIDATION_FAILED');
      }
      expect(await writeCounts(sql)).toEqual(before);
      // the PATCH was not applied as an empty update either
      expect(await currentPage(page.id)).toEqual(page);
    },
  );

  it('accepts application/json with a charset parameter', async () => {
    const res = await send('POST', pagesPath(), {
      rawBody: JSON.stringify({ title: 'charset' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(res.status).toBe(201);
  });

  it.each([
    ['limit=0'],
    ['limit=-1'],
    ['limit=501'],
    ['limit=1.5'],
    ['limit=abc'],
    ['limit='],
    ['cursor=short'],
    ['cursor=unknown-cursor-id'],
  ])('answers 400 with issues for the list query %s', async (query) => {
    const res = await send('GET', `${pagesPath()}?${query}`);
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual([query.split('=')[0]]);
  });

  it('answers 400 for text PostgreSQL cannot store (a NUL character) and writes nothing', async () => {
    const before = await writeCounts(sql);
    const res = await send('POST', pagesPath(), {
      body: { title: 'nul \u0000 byte' },
      headers: { 'x-transaction-id': txId() },
    });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(await writeCounts(sql)).toEqual(before);
  });
});

describe('INVALID_HEADER', () => {
  it.each([
    ['x-transaction-id', 'short'],
    ['x-transaction-id', 'x'.repeat(65)],
    ['x-transaction-id', 'tx with spaces'],
    ['x-transaction-id', 'tx/slash-0001'],
    ['x-client-id', 'client.dot.01'],
    ['x-client-id', 'ab'],
  ])('answers 400 with issues naming %s for "%s" and writes nothing', async (header, value) => {
    const before = await writeCounts(sql);
    const res = await send('POST', pagesPath(), { body: { title: 'header' }, headers: { [header]: value } });
    expectError(res, 400, 'INVALID_HEADER');
    expect(issuePaths(res)).toEqual([header]);
    expect(await writeCounts(sql)).toEqual(before);
  });

  it('answers 400 INVALID_HEADER for a malformed X-Expected-Transaction-Id on PATCH and DELETE, changing nothing', async () => {
    const page = await createPage('expected header');
    for (const [method, body] of [
      ['PATCH', { title: 'x' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await send(method, `${pagesPath()}/${page.id}`, {
        body,
        headers: { 'x-transaction-id': txId(), 'x-expected-transaction-id': 'not valid!' },
      });
      expectError(res, 400, 'INVALID_HEADER');
      expect(issuePaths(res)).toEqual(['x-expected-transaction-id']);
    }
    expect(await currentPage(page.id)).toEqual(page);
  });
});

describe('UNAUTHENTICATED, FORBIDDEN, NOT_FOUND', () => {
  it('answers 401 UNAUTHENTICATED without credentials', async () => {
    expectError(await stack.client.request('GET', '/api/me'), 401, 'UNAUTHENTICATED');
    expectError(await stack.client.request('GET', pagesPath()), 401, 'UNAUTHENTICATED');
  });

  it('answers 403 FORBIDDEN when a member who is not an admin adds a member', async () => {
    const bob = await stack.client.signUp();
    await send('POST', `/api/organizations/${alice.org.id}/members`, {
      body: { email: bob.user.email, role: 'member' },
    });
    const res = await stack.client.request('POST', `/api/organizations/${alice.org.id}/members`, {
      token: bob.token,
      body: { email: alice.user.email, role: 'member' },
    });
    expectError(res, 403, 'FORBIDDEN');
  });

  it.each([
    ['GET', '/api/nope'],
    ['GET', '/api'],
    ['POST', '/api/health'],
    ['PUT', '/api/organizations'],
    ['GET', '/api/organizations/x/unknown-collection'],
    ['GET', '/api/organizations/x/pages/abcdefgh/extra'],
  ])('answers an unknown route (%s %s) with 404 NOT_FOUND JSON', async (method, path) => {
    expectError(await send(method, path), 404, 'NOT_FOUND');
  });

  it('answers 404 NOT_FOUND for an absent, a malformed or a soft-deleted entity id', async () => {
    const page = await createPage('to delete');
    expect((await send('DELETE', `${pagesPath()}/${page.id}`)).status).toBe(200);
    for (const id of ['absent-page-id', 'bad!id', 'x'.repeat(65), page.id]) {
      expectError(await send('GET', `${pagesPath()}/${id}`), 404, 'NOT_FOUND');
    }
    expectError(
      await send('PATCH', `${pagesPath()}/absent-page-id`, { body: { title: 'x' } }),
      404,
      'NOT_FOUND',
    );
    expectError(await send('DELETE', `${pagesPath()}/absent-page-id`), 404, 'NOT_FOUND');
  });
});

describe('conflicts', () => {
  it('answers 409 EMAIL_TAKEN', async () => {
    const res = await stack.client.request('POST', '/api/auth/sign-up', {
      body: { email: alice.user.email, password: 'long enough password' },
    });
    expectError(res, 409, 'EMAIL_TAKEN');
  });

  it('answers 409 SLUG_TAKEN', async () => {
    expectError(
      await send('POST', '/api/organizations', { body: { name: 'dup', slug: alice.org.slug } }),
      409,
      'SLUG_TAKEN',
    );
  });

  it('answers 409 ID_TAKEN for a client id that exists under another transaction', async () => {
    const page = await createPage('taken');
    const res = await send('POST', pagesPath(), {
      body: { id: page.id, title: 'again' },
      headers: { 'x-transaction-id': txId() },
    });
    expectError(res, 409, 'ID_TAKEN');
    expect(await currentPage(page.id)).toEqual(page);
  });

  it('answers 409 TRANSACTION_CONFLICT with serverVersion (the current entity), expectedTransaction and actualTransaction', async () => {
    const page = await createPage('v1');
    const path = `${pagesPath()}/${page.id}`;
    const v2 = await send('PATCH', path, { body: { title: 'v2' }, headers: { 'x-transaction-id': txId() } });
    expect(v2.status).toBe(200);
    const before = await writeCounts(sql);
    for (const [method, body] of [
      ['PATCH', { title: 'stale' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await send(method, path, {
        body,
        headers: { 'x-transaction-id': txId(), 'x-expected-transaction-id': page.transactions.insert },
      });
      expectError(res, 409, 'TRANSACTION_CONFLICT', [
        'serverVersion',
        'expectedTransaction',
        'actualTransaction',
      ]);
      expect(res.body.serverVersion).toEqual(v2.body);
      expect(res.body.expectedTransaction).toBe(page.transactions.insert);
      expect(res.body.actualTransaction).toBe(v2.body.transactions.update);
      expect(res.headers.get('x-idempotent-hit')).toBeNull();
    }
    expect(await writeCounts(sql)).toEqual(before);
    expect(await currentPage(page.id)).toEqual(v2.body);
  });

  it('answers 409 ENTITY_DELETED with serverVersion to an update or delete of a soft-deleted entity', async () => {
    const page = await createPage('deleted');
    const path = `${pagesPath()}/${page.id}`;
    const deleted = await send('DELETE', path, { headers: { 'x-transaction-id': txId() } });
    expect(deleted.status).toBe(200);
    const before = await writeCounts(sql);
    for (const [method, body] of [
      ['PATCH', { title: 'zombie' }],
      ['DELETE', undefined],
    ] as const) {
      const expectations: Record<string, string>[] = [
        {},
        { 'x-expected-transaction-id': page.transactions.insert },
      ];
      for (const expected of expectations) {
        const res = await send(method, path, { body, headers: { 'x-transaction-id': txId(), ...expected } });
        expect(res.status).toBe(409);
        expect(res.body.code).toBe('ENTITY_DELETED');
        const extra = Object.keys(res.body).filter((k) => !['error', 'code', 'message'].includes(k));
        expect(extra).toContain('serverVersion');
        expectError(res, 409, 'ENTITY_DELETED', extra);
        expect(res.body.serverVersion).toEqual(deleted.body);
        expect(res.body.serverVersion.deletedAt).not.toBeNull();
      }
    }
    expect(await writeCounts(sql)).toEqual(before);
  });

  it('answers 409 TRANSACTION_ID_REUSED for a transaction id applied to another entity or action', async () => {
    const tx = txId();
    const page = (
      await send('POST', pagesPath(), { body: { title: 'first' }, headers: { 'x-transaction-id': tx } })
    ).body;
    const other = await createPage('other');
    const before = await writeCounts(sql);
    for (const [method, path, body] of [
      ['POST', pagesPath(), { id: `other-${tx}`, title: 'second' }],
      ['PATCH', `${pagesPath()}/${page.id}`, { title: 'as update' }],
      ['PATCH', `${pagesPath()}/${other.id}`, { title: 'other entity' }],
      ['DELETE', `${pagesPath()}/${page.id}`, undefined],
      [
        'POST',
        `/api/organizations/${alice.org.id}/attachments`,
        { filename: 'a', contentType: 'a/b', size: 1, url: 'https://x.example' },
      ],
    ] as const) {
      const res = await send(method, path, { body, headers: { 'x-transaction-id': tx } });
      expect(res.status, `${method} ${path}`).toBe(409);
      expectError(res, 409, 'TRANSACTION_ID_REUSED');
    }
    expect(await writeCounts(sql)).toEqual(before);
    expect(await currentPage(page.id)).toMatchObject({ title: 'first', transactions: { update: null } });
    expect(await currentPage(other.id)).toEqual(other);
  });
});

describe('PAYLOAD_TOO_LARGE', () => {
  it('answers 413 to a body over 1 MiB, writes nothing, and the connection stays usable for the next request', async () => {
    const before = await writeCounts(sql);
    const tx = txId();
    const res = await send('POST', pagesPath(), {
      body: { title: 'huge', content: 'x'.repeat(MAX_BODY_BYTES) },
      headers: { 'x-transaction-id': tx },
    });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    // The server stops reading the body and drops the socket soon after: it must say so, or a
    // keep-alive client sends its next request into a closing socket ("other side closed").
    expect(res.headers.get('connection')).toBe('close');
    expect((await send('GET', pagesPath())).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await send('GET', pagesPath())).status).toBe(200);
    expect(await writeCounts(sql)).toEqual(before);
    const count = await countOf(
      sql`select count(*)::int as count from applied_transactions where transaction_id = ${tx}`,
    );
    expect(count).toBe(0);
  });

  it('answers 413 to a streamed (chunked) body over 1 MiB that declares no length', async () => {
    const before = await writeCounts(sql);
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('{"title":"chunked","content":"'));
        for (let i = 0; i < 11; i++) controller.enqueue(encoder.encode('y'.repeat(100_000)));
        controller.enqueue(encoder.encode('"}'));
        controller.close();
      },
    });
    const res = await fetch(`${stack.api.url}${pagesPath()}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'payload_too_large', code: 'PAYLOAD_TOO_LARGE' });
    expect(await writeCounts(sql)).toEqual(before);
  });

  it('answers 413 on the auth routes too', async () => {
    const res = await stack.client.request('POST', '/api/auth/sign-up', {
      body: { email: 'big@example.com', password: 'p'.repeat(MAX_BODY_BYTES) },
    });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(res.headers.get('connection')).toBe('close');
  });

  it('accepts a body just under 1 MiB (limits count bytes, and the content fits)', async () => {
    // 500 000 two-byte characters: the longest content allowed, about 1 000 000 bytes
    const content = 'é'.repeat(500_000);
    const res = await send('POST', pagesPath(), { body: { title: 'large but fine', content } });
    expect(res.status).toBe(201);
    expect(Buffer.byteLength(JSON.stringify({ title: 'large but fine', content }))).toBeLessThan(
      MAX_BODY_BYTES,
    );
    const [row] = await sql`select length(content)::int as length from pages where id = ${res.body.id}`;
    expect(row!.length).toBe(500_000);
  });
});

describe('connections after a refused body', () => {
  it('announces Connection: close when it refuses a request without reading its body, and keeps accepted ones alive', async () => {
    const body = { title: 'refused', content: 'x'.repeat(200_000) };
    for (const res of [
      await stack.client.request('POST', pagesPath(), { body }),
      await send('POST', '/api/organizations/not-my-org/pages', { body }),
      await send('POST', pagesPath(), { body, headers: { 'x-transaction-id': 'bad' } }),
    ]) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('connection')).toBe('close');
    }
    const accepted = await send('POST', pagesPath(), { body });
    expect(accepted.status).toBe(201);
    expect(accepted.headers.get('connection')).toBe('keep-alive');
  });
});

describe('GET /api/health', () => {
  it('answers 200 { status: ok, db: ok, cdc: { status, detail, lagBytes, lastEventAt } } without credentials', async () => {
    const res = await stack.client.request('GET', '/api/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'ok',
      db: 'ok',
      cdc: {
        status: expect.any(String),
        detail: 'starting',
        lagBytes: expect.any(Number),
        lastEventAt: null,
      },
    });
    // no CDC worker runs in this suite: the migration step made its slot, nothing streams from it yet
    expect(res.body.cdc.status).toBe('starting');
    expect(res.body.cdc.lagBytes).toBeGreaterThanOrEqual(0);
  });
});

describe('GET /api/metrics', () => {
  it('answers Prometheus text with request counts by route and status, latency, CDC lag and stream clients', async () => {
    await send('GET', pagesPath());
    const res = await stack.client.request('GET', '/api/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = res.body as string;
    expect(text).toContain('# TYPE http_requests_total counter');
    expect(text).toMatch(
      /^http_requests_total\{[^}]*route="\/api\/organizations\/:org\/pages"[^}]*status="200"[^}]*\} [1-9]/m,
    );
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(text).toMatch(/^cdc_lag_bytes \d+/m);
    expect(text).toContain('# TYPE stream_clients gauge');
  });
});

describe('GET /api/openapi.json', () => {
  const scope: [string, string][] = [
    ['post', '/api/auth/sign-up'],
    ['post', '/api/auth/sign-in'],
    ['post', '/api/auth/sign-out'],
    ['get', '/api/me'],
    ['get', '/api/health'],
    ['get', '/api/metrics'],
    ['get', '/api/organizations'],
    ['post', '/api/organizations'],
    ['get', '/api/organizations/{org}'],
    ['post', '/api/organizations/{org}/members'],
    ...['pages', 'attachments'].flatMap((plural): [string, string][] => [
      ['get', `/api/organizations/{org}/${plural}`],
      ['post', `/api/organizations/{org}/${plural}`],
      ['get', `/api/organizations/{org}/${plural}/{id}`],
      ['patch', `/api/organizations/{org}/${plural}/{id}`],
      ['delete', `/api/organizations/{org}/${plural}/{id}`],
    ]),
  ];

  it('is an OpenAPI 3.1 document listing every route in scope with a unique operationId', async () => {
    const res = await stack.client.request('GET', '/api/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const ids: string[] = [];
    for (const [method, path] of scope) {
      const operation = doc.paths?.[path]?.[method];
      expect(operation, `${method.toUpperCase()} ${path}`).toBeDefined();
      expect(operation.operationId, `${method.toUpperCase()} ${path}`).toMatch(/^[a-zA-Z]+$/);
      ids.push(operation.operationId);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents the transaction headers on writes, the conflict body and the security schemes', async () => {
    const doc = (await stack.client.request('GET', '/api/openapi.json')).body;
    for (const plural of ['pages', 'attachments']) {
      const patch = doc.paths[`/api/organizations/{org}/${plural}/{id}`].patch;
      const headers = patch.parameters
        .filter((p: any) => p.in === 'header')
        .map((p: any) => p.name.toLowerCase());
      expect(headers.sort()).toEqual(['x-client-id', 'x-expected-transaction-id', 'x-transaction-id']);
      expect(patch.responses['200'].headers).toHaveProperty('X-Transaction-Id');
      expect(patch.responses['200'].headers).toHaveProperty('X-Idempotent-Hit');
      expect(patch.responses).toHaveProperty('409');
      const create = doc.paths[`/api/organizations/{org}/${plural}`].post;
      expect(create.responses).toHaveProperty('201');
      expect(create.responses).toHaveProperty('413');
    }
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['bearerAuth', 'cookieAuth']);
    expect(doc.paths['/api/me'].get.security).toBeDefined();
  });
});

describe('GET /api/docs', () => {
  it('answers an HTML page that loads the OpenAPI document', async () => {
    const res = await stack.client.request('GET', '/api/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.body).toMatch(/<html/i);
    expect(res.body).toContain('/api/openapi.json');
  });
});

describe('a write that fails inside the database', () => {
  /** Makes PostgreSQL fail any insert or update of a page titled 'explode', as if it went away. */
  async function withExplodingPages(run: () => Promise<void>) {
    await sql.unsafe(`
      create or replace function explode_for_test() returns trigger language plpgsql as $$
      begin
        if new.title = 'explode' then raise exception 'injected failure' using errcode = '57P03'; end if;
        return new;
      end $$;
      create trigger explode_for_test before insert or update on pages
        for each row execute function explode_for_test();`);
    try {
      await run();
    } finally {
      await sql.unsafe('drop trigger explode_for_test on pages; drop function explode_for_test();');
    }
  }

  it('keeps neither the row nor the transaction claim, so the same transaction id applies on retry', async () => {
    const page = await createPage('before the fault');
    const createTx = txId();
    const updateTx = txId();
    const before = await writeCounts(sql);
    await withExplodingPages(async () => {
      const create = await send('POST', pagesPath(), {
        body: { title: 'explode' },
        headers: { 'x-transaction-id': createTx },
      });
      expectError(create, 503, 'SERVICE_UNAVAILABLE');
      const update = await send('PATCH', `${pagesPath()}/${page.id}`, {
        body: { title: 'explode' },
        headers: { 'x-transaction-id': updateTx },
      });
      expectError(update, 503, 'SERVICE_UNAVAILABLE');
      expect(await writeCounts(sql)).toEqual(before);
      expect(await currentPage(page.id)).toEqual(page);
    });
    const retriedCreate = await send('POST', pagesPath(), {
      body: { title: 'explode' },
      headers: { 'x-transaction-id': createTx },
    });
    expect(retriedCreate.status).toBe(201);
    expect(retriedCreate.headers.get('x-idempotent-hit')).toBeNull();
    const retriedUpdate = await send('PATCH', `${pagesPath()}/${page.id}`, {
      body: { title: 'explode' },
      headers: { 'x-transaction-id': updateTx },
    });
    expect(retriedUpdate.status).toBe(200);
    expect(retriedUpdate.headers.get('x-idempotent-hit')).toBeNull();
    expect(retriedUpdate.body).toMatchObject({ title: 'explode', transactions: { update: updateTx } });
  });
});

// Last: it stops the database under the running API.
describe('outage', () => {
  it('answers 503 (never 500) while the database is down: health with the same shape, API routes SERVICE_UNAVAILABLE', async () => {
    await stack.cluster.stop();
    try {
      const health = await stack.client.request('GET', '/api/health');
      expect(health.status).toBe(503);
      expect(health.body).toEqual({
        status: expect.any(String),
        db: expect.not.stringMatching(/^ok$/),
        cdc: { status: 'down', detail: null, lagBytes: expect.any(Number), lastEventAt: null },
      });
      for (const [method, path, body] of [
        ['GET', pagesPath()],
        ['POST', pagesPath(), { title: 'during outage' }],
        ['POST', '/api/auth/sign-in', { email: alice.user.email, password: 'whatever password' }],
      ] as const) {
        const res = await send(method, path, { body });
        expect(res.status, `${method} ${path}`).toBe(503);
        expectError(res, 503, 'SERVICE_UNAVAILABLE');
      }
    } finally {
      await stack.cluster.start();
    }
    // and it recovers on its own
    const after = await stack.client.request('GET', '/api/health');
    expect(after.status).toBe(200);
    expect((await send('GET', pagesPath())).status).toBe(200);
  });

  it('answers promptly during an outage of seconds and serves again within about a second after it', {
    timeout: 60_000,
  }, async () => {
    // Every read during the outage fails a connection of the pool. With postgres.js's own
    // reconnect delay (3^n / 100 s after n failures, up to 20 s) such an outage left the API
    // answering its first read 7 s after the database was back, and reads meanwhile waited up
    // to 5 s for their 503.
    await stack.cluster.stop();
    const slowest = { ms: 0 };
    try {
      const until = Date.now() + 4_000;
      while (Date.now() < until) {
        const sent = Date.now();
        const res = await send('GET', pagesPath());
        expect(res.status).toBe(503);
        slowest.ms = Math.max(slowest.ms, Date.now() - sent);
        await sleep(100);
      }
    } finally {
      await stack.cluster.start();
    }
    const back = Date.now();
    while ((await send('GET', pagesPath())).status !== 200) await sleep(50);
    expect(Date.now() - back, 'first read answered after the database is back (ms)').toBeLessThan(3_000);
    expect(slowest.ms, 'slowest 503 during the outage (ms)').toBeLessThan(2_500);
  });
});

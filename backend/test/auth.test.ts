import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack, uniqueName } from '../src/testing/api.ts';
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

const PASSWORD = 'correct horse battery';
const newEmail = () => `${uniqueName('auth')}@example.com`;

function signUp(body: unknown) {
  return stack.client.request('POST', '/api/auth/sign-up', { body });
}
function signIn(body: unknown) {
  return stack.client.request('POST', '/api/auth/sign-in', { body });
}
function asCookie(token: string) {
  return { cookie: `sync_session=${token}` };
}
/** The `sync_session` Set-Cookie line of a response. */
function sessionCookie(headers: Headers): string {
  const line = headers.getSetCookie().find((c) => c.startsWith('sync_session='));
  expect(line, 'a sync_session cookie is set').toBeDefined();
  return line!;
}
async function me(token: string) {
  return stack.client.request('GET', '/api/me', { token });
}

describe('sign-up', () => {
  it('creates an account: 201 { user, token } and an HttpOnly session cookie holding that token', async () => {
    const email = newEmail();
    const res = await signUp({ email, password: PASSWORD, name: 'Ada' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['token', 'user']);
    expect(res.body.user).toEqual({ id: expect.any(String), email, name: 'Ada' });
    expect(res.body.token).toMatch(/^\S{32,200}$/);
    const cookie = sessionCookie(res.headers);
    expect(cookie.startsWith(`sync_session=${res.body.token};`)).toBe(true);
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    expect(cookie).toMatch(/;\s*SameSite=(Lax|Strict)/i);
    const who = await me(res.body.token);
    expect(who.status).toBe(200);
    expect(who.body.user).toEqual(res.body.user);
  });

  it('stores the email in lower case and names the user after the local part when no name is given', async () => {
    const local = uniqueName('Mixed.Case');
    const res = await signUp({ email: `${local}@Example.COM`, password: PASSWORD });
    expect(res.status).toBe(201);
    expect(res.body.user.email).toBe(`${local.toLowerCase()}@example.com`);
    expect(res.body.user.name).toBe(local.toLowerCase());
  });

  it('accepts a password of exactly 8 characters', async () => {
    const res = await signUp({ email: newEmail(), password: '12345678' });
    expect(res.status).toBe(201);
  });

  it('refuses a password shorter than 8 characters with VALIDATION_FAILED and creates no user', async () => {
    const email = newEmail();
    const res = await signUp({ email, password: '1234567' });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual(['password']);
    const count = await countOf(sql`select count(*)::int as count from users where email = ${email}`);
    expect(count).toBe(0);
  });

  it.each([
    ['a missing email', { password: PASSWORD }, 'email'],
    ['a malformed email', { email: 'not-an-email', password: PASSWORD }, 'email'],
    ['a missing password', { email: 'someone@example.com' }, 'password'],
    ['a numeric password', { email: 'someone@example.com', password: 12345678 }, 'password'],
    ['an empty name', { email: 'someone@example.com', password: PASSWORD, name: '  ' }, 'name'],
  ])('refuses %s with VALIDATION_FAILED naming the field', async (_label, body, field) => {
    const res = await signUp(body);
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toContain(field);
  });

  it('answers 409 EMAIL_TAKEN for a registered email, also in another letter case, and keeps one account', async () => {
    const email = newEmail();
    expect((await signUp({ email, password: PASSWORD })).status).toBe(201);
    expectError(await signUp({ email, password: 'another password' }), 409, 'EMAIL_TAKEN');
    expectError(await signUp({ email: email.toUpperCase(), password: PASSWORD }), 409, 'EMAIL_TAKEN');
    const count = await countOf(sql`select count(*)::int as count from users where lower(email) = ${email}`);
    expect(count).toBe(1);
    // the first password still signs in: the losing sign-up changed nothing
    expect((await signIn({ email, password: PASSWORD })).status).toBe(200);
  });

  it('creates one account when the same email signs up 8 times concurrently', async () => {
    const email = newEmail();
    const answers = await Promise.all(Array.from({ length: 8 }, () => signUp({ email, password: PASSWORD })));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    for (const a of answers.filter((a) => a.status !== 201)) expectError(a, 409, 'EMAIL_TAKEN');
    const count = await countOf(sql`select count(*)::int as count from users where email = ${email}`);
    expect(count).toBe(1);
  });
});

describe('sign-up atomicity', () => {
  it('leaves no account behind when the session cannot be stored, so the retry succeeds', async () => {
    // a real fault inside PostgreSQL: storing this user's session fails as if the server went away
    await sql.unsafe(`
      create or replace function fail_session_for_test() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from users where id = new.user_id and email like 'session-fails-%') then
          raise exception 'injected failure' using errcode = '57P03';
        end if;
        return new;
      end $$;
      create trigger fail_session_for_test before insert on sessions
        for each row execute function fail_session_for_test();`);
    const email = `session-fails-${uniqueName('x')}@example.com`;
    try {
      const failed = await signUp({ email, password: PASSWORD });
      expectError(failed, 503, 'SERVICE_UNAVAILABLE');
      expect(await countOf(sql`select count(*)::int as count from users where email = ${email}`)).toBe(0);
    } finally {
      await sql.unsafe(
        'drop trigger fail_session_for_test on sessions; drop function fail_session_for_test();',
      );
    }
    const retry = await signUp({ email, password: PASSWORD });
    expect(retry.status).toBe(201);
    expect((await me(retry.body.token)).status).toBe(200);
  });
});

describe('sign-in', () => {
  it('answers 200 { user, token } with a new working token and session cookie', async () => {
    const email = newEmail();
    const up = await signUp({ email, password: PASSWORD });
    const res = await signIn({ email, password: PASSWORD });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['token', 'user']);
    expect(res.body.user).toEqual(up.body.user);
    expect(res.body.token).not.toBe(up.body.token);
    expect(sessionCookie(res.headers)).toMatch(new RegExp(`^sync_session=${res.body.token};.*HttpOnly`, 'i'));
    expect((await me(res.body.token)).status).toBe(200);
    expect((await me(up.body.token)).status).toBe(200);
  });

  it('matches the email whatever its letter case', async () => {
    const email = newEmail();
    await signUp({ email, password: PASSWORD });
    const res = await signIn({ email: email.toUpperCase(), password: PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body.user.email).toBe(email);
  });

  it('answers a wrong password and an unknown email alike with 401 and sets no cookie', async () => {
    const email = newEmail();
    await signUp({ email, password: PASSWORD });
    const wrongPassword = await signIn({ email, password: `${PASSWORD}!` });
    const unknownEmail = await signIn({ email: newEmail(), password: PASSWORD });
    for (const res of [wrongPassword, unknownEmail]) {
      expectError(res, 401, 'INVALID_CREDENTIALS');
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    // the same answer for both, so the API does not reveal which emails have accounts
    expect(unknownEmail.body).toEqual(wrongPassword.body);
  });

  it('refuses a sign-in without password with VALIDATION_FAILED', async () => {
    expectError(await signIn({ email: alice.user.email }), 400, 'VALIDATION_FAILED');
  });
});

describe('sign-out', () => {
  it('answers 204, clears the cookie, and the token then gets 401 UNAUTHENTICATED everywhere', async () => {
    const email = newEmail();
    const { token } = await stack.client.signUp(email);
    const other = await signIn({ email, password: 'correct horse battery' });
    const res = await stack.client.request('POST', '/api/auth/sign-out', { token });
    expect(res.status).toBe(204);
    expect(res.body).toBeNull();
    expect(sessionCookie(res.headers)).toMatch(/^sync_session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i);
    expectError(await me(token), 401, 'UNAUTHENTICATED');
    expectError(await stack.client.request('GET', '/api/organizations', { token }), 401, 'UNAUTHENTICATED');
    expectError(await stack.client.request('POST', '/api/auth/sign-out', { token }), 401, 'UNAUTHENTICATED');
    // only this session ended: the same user's other session still works
    expect((await me(other.body.token)).status).toBe(200);
  });

  it('signs out a cookie session from the same origin', async () => {
    const { token } = await stack.client.signUp();
    const res = await stack.client.request('POST', '/api/auth/sign-out', {
      headers: { ...asCookie(token), origin: stack.api.url },
    });
    expect(res.status).toBe(204);
    expectError(await me(token), 401, 'UNAUTHENTICATED');
  });
});

describe('GET /api/me', () => {
  it('answers { user, organizations: [{ id, slug, name, role }] } with the role in each organization', async () => {
    const { token, user } = await stack.client.signUp();
    const empty = await me(token);
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      user: { id: user.id, email: user.email, name: user.name },
      organizations: [],
    });

    const slug = uniqueName('me-org').toLowerCase();
    const created = await stack.client.request('POST', '/api/organizations', {
      token,
      body: { name: 'Mine', slug },
    });
    expect(created.status).toBe(201);
    const added = await stack.client.request('POST', `/api/organizations/${alice.org.id}/members`, {
      token: alice.token,
      body: { email: user.email, role: 'member' },
    });
    expect(added.status).toBe(201);

    const res = await me(token);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['organizations', 'user']);
    expect(res.body.organizations).toHaveLength(2);
    expect(res.body.organizations).toEqual(
      expect.arrayContaining([
        { id: created.body.id, slug, name: 'Mine', role: 'admin' },
        { id: alice.org.id, slug: alice.org.slug, name: alice.org.slug, role: 'member' },
      ]),
    );
  });
});

describe('protected routes', () => {
  const routes = (org: string, id: string) =>
    [
      ['GET', '/api/me'],
      ['POST', '/api/auth/sign-out'],
      ['GET', '/api/organizations'],
      ['POST', '/api/organizations', { name: 'x', slug: 'never-created' }],
      ['GET', `/api/organizations/${org}`],
      ['POST', `/api/organizations/${org}/members`, { email: 'x@example.com', role: 'member' }],
      ['GET', `/api/organizations/${org}/pages`],
      ['POST', `/api/organizations/${org}/pages`, { title: 'never created' }],
      ['GET', `/api/organizations/${org}/pages/${id}`],
      ['PATCH', `/api/organizations/${org}/pages/${id}`, { title: 'never written' }],
      ['DELETE', `/api/organizations/${org}/pages/${id}`],
      ['GET', `/api/organizations/${org}/attachments`],
      [
        'POST',
        `/api/organizations/${org}/attachments`,
        { filename: 'a.png', contentType: 'image/png', size: 1, url: 'https://example.com/a.png' },
      ],
      ['GET', `/api/organizations/${org}/attachments/${id}`],
      ['PATCH', `/api/organizations/${org}/attachments/${id}`, { filename: 'never.png' }],
      ['DELETE', `/api/organizations/${org}/attachments/${id}`],
    ] as [string, string, unknown?][];

  /** Credentials that must not work, built fresh for each test. */
  async function badCredentials(): Promise<[string, Record<string, string>][]> {
    const expired = await stack.client.signUp();
    await sql`update sessions set expires_at = now() - interval '1 second' where user_id = ${expired.user.id}`;
    const signedOut = await stack.client.signUp();
    await stack.client.request('POST', '/api/auth/sign-out', { token: signedOut.token });
    return [
      ['no credentials', {}],
      ['an empty bearer token', { authorization: 'Bearer ' }],
      ['a garbage bearer token', { authorization: 'Bearer not-a-real-token' }],
      ['a non-bearer scheme', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['a bearer token of 10 000 characters', { authorization: `Bearer ${'x'.repeat(10_000)}` }],
      ['an expired session', { authorization: `Bearer ${expired.token}` }],
      ['a signed-out token', { authorization: `Bearer ${signedOut.token}` }],
      ['an expired session cookie', asCookie(expired.token)],
      ['a garbage session cookie', asCookie('garbage')],
      ['the token under another cookie name', { cookie: `session=${alice.token}` }],
    ];
  }

  it('answers 401 UNAUTHENTICATED to every protected route kind for missing, garbage, expired and signed-out credentials, writing nothing', async () => {
    const page = await stack.client.request('POST', `/api/organizations/${alice.org.id}/pages`, {
      token: alice.token,
      body: { title: 'protected' },
    });
    expect(page.status).toBe(201);
    const before = await writeCounts(sql);
    const orgsBefore = await countOf(sql`select count(*)::int as count from organizations`);
    for (const [label, headers] of await badCredentials()) {
      for (const [method, path, body] of routes(alice.org.id, page.body.id)) {
        const res = await stack.client.request(method, path, {
          body,
          headers: { ...headers, 'x-transaction-id': txId() },
        });
        expect(res.status, `${label}: ${method} ${path}`).toBe(401);
        expectError(res, 401, 'UNAUTHENTICATED');
      }
    }
    expect(await writeCounts(sql)).toEqual(before);
    const orgs = await countOf(sql`select count(*)::int as count from organizations`);
    expect(orgs).toBe(orgsBefore);
    const after = await stack.client.request(
      'GET',
      `/api/organizations/${alice.org.id}/pages/${page.body.id}`,
      {
        token: alice.token,
      },
    );
    expect(after.body).toEqual(page.body);
  });

  it('checks credentials before anything else: an unknown organization, a bad body or a bad header still answers 401', async () => {
    for (const [method, path, options] of [
      ['GET', '/api/organizations/no-such-org/pages', {}],
      ['POST', `/api/organizations/${alice.org.id}/pages`, { body: { title: 42 } }],
      ['POST', `/api/organizations/${alice.org.id}/pages`, { rawBody: '{not json' }],
      ['POST', `/api/organizations/${alice.org.id}/pages`, { headers: { 'x-transaction-id': '!' } }],
    ] as const) {
      expectError(await stack.client.request(method, path, options), 401, 'UNAUTHENTICATED');
    }
  });

  it('leaves the service routes open: health, metrics, OpenAPI document, docs', async () => {
    for (const path of ['/api/health', '/api/metrics', '/api/openapi.json', '/api/docs']) {
      const res = await stack.client.request('GET', path);
      expect(res.status, path).toBe(200);
    }
  });
});

describe('session cookie', () => {
  const pagesPath = () => `/api/organizations/${alice.org.slug}/pages`;

  it('authenticates GET requests without an Authorization header', async () => {
    const who = await stack.client.request('GET', '/api/me', { headers: asCookie(alice.token) });
    expect(who.status).toBe(200);
    expect(who.body.user.id).toBe(alice.user.id);
    const list = await stack.client.request('GET', pagesPath(), { headers: asCookie(alice.token) });
    expect(list.status).toBe(200);
    // a cross-site GET is harmless (the response is not readable cross-site) and passes
    const crossSite = await stack.client.request('GET', pagesPath(), {
      headers: { ...asCookie(alice.token), origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(200);
  });

  it.each([
    ['a foreign Origin', { origin: 'https://evil.example' }],
    ['an Origin on another port of the same host', { origin: 'http://127.0.0.1:1' }],
    ['Origin: null', { origin: 'null' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
  ])('rejects a cookie-authenticated write with %s with 403 and writes nothing', async (_label, headers) => {
    const title = `csrf-${txId()}`;
    const before = await writeCounts(sql);
    for (const [method, path, body] of [
      ['POST', pagesPath(), { title }],
      ['POST', '/api/organizations', { name: title, slug: uniqueName('csrf').toLowerCase() }],
      ['POST', '/api/auth/sign-out', undefined],
    ] as const) {
      const res = await stack.client.request(method, path, {
        body,
        headers: { ...asCookie(alice.token), ...headers },
      });
      expectError(res, 403, 'CSRF_REJECTED');
    }
    expect(await writeCounts(sql)).toEqual(before);
    const count = await countOf(sql`select count(*)::int as count from organizations where name = ${title}`);
    expect(count).toBe(0);
    // the session survived the rejected sign-out
    expect((await me(alice.token)).status).toBe(200);
  });

  it.each([
    ['a matching Origin', () => ({ origin: stack.api.url })],
    ['Sec-Fetch-Site: same-origin', () => ({ 'sec-fetch-site': 'same-origin' })],
    ['Sec-Fetch-Site: none (typed by the user)', () => ({ 'sec-fetch-site': 'none' })],
    [
      'a matching Origin and Sec-Fetch-Site',
      () => ({ origin: stack.api.url, 'sec-fetch-site': 'same-origin' }),
    ],
    [
      'an Origin allowed by CORS_ORIGINS (the web app dev server)',
      () => ({ origin: 'http://localhost:5173', 'sec-fetch-site': 'same-site' }),
    ],
  ])('accepts a cookie-authenticated write with %s', async (_label, headers) => {
    const title = `same-origin-${txId()}`;
    const res = await stack.client.request('POST', pagesPath(), {
      body: { title },
      headers: { ...asCookie(alice.token), ...headers() },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ title, createdBy: alice.user.id });
  });

  it('accepts a bearer-authenticated write whatever its Origin: a bearer token is never sent by the browser on its own', async () => {
    const res = await stack.client.request('POST', pagesPath(), {
      token: alice.token,
      body: { title: 'bearer from anywhere' },
      headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(201);
  });
});

describe('sessions at rest', () => {
  it('stores only a hash of each session token, never the token or the password', async () => {
    const password = 'a very particular password';
    const { token, user } = await stack.client.signUp(newEmail(), password);
    const second = await signIn({ email: user.email, password });
    const sessions = await sql`select * from sessions where user_id = ${user.id}`;
    expect(sessions).toHaveLength(2);
    const stored = JSON.stringify(sessions);
    for (const secret of [token, second.body.token]) expect(stored).not.toContain(secret);
    for (const session of sessions) expect(session.token_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const [account] = await sql`select * from users where id = ${user.id}`;
    expect(JSON.stringify(account)).not.toContain(password);
  });
});

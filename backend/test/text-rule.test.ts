import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack, uniqueName } from '../src/testing/api.ts';
import { expectError, issuePaths, orgPath } from './support/contract.ts';

let stack: TestStack;
let alice: Member;

beforeAll(async () => {
  stack = await startTestStack();
  alice = await stack.client.newMember();
});
afterAll(async () => {
  await stack?.stop();
});

const LONE = 'abc\ud800def';
const post = (path: string, body: unknown, token = alice.token) =>
  stack.client.request('POST', path, { token, body });

describe('one rule for text that cannot be stored exactly', () => {
  const slug = () => uniqueName('org').toLowerCase();
  const cases: [string, () => Promise<{ status: number; body: any; headers: Headers }>, string][] = [
    ['an organization name', () => post('/api/organizations', { name: LONE, slug: slug() }), 'name'],
    ['a page title', () => post(`${orgPath(alice)}/pages`, { title: LONE }), 'title'],
    [
      'a page content',
      () => post(`${orgPath(alice)}/pages`, { title: 'ok', content: `x${LONE}` }),
      'content',
    ],
    [
      'an attachment filename',
      () =>
        post(`${orgPath(alice)}/attachments`, {
          filename: LONE,
          contentType: 'image/png',
          size: 1,
          url: 'https://example.com/a.png',
        }),
      'filename',
    ],
    [
      'a sign-up name',
      () =>
        post('/api/auth/sign-up', { email: `${slug()}@example.com`, password: 'long enough', name: LONE }),
      'name',
    ],
    ['a page title (a low half)', () => post(`${orgPath(alice)}/pages`, { title: '\udc00' }), 'title'],
  ];
  for (const [what, send, field] of cases) {
    it(`refuses a lone surrogate in ${what} with 400 VALIDATION_FAILED naming ${field}`, async () => {
      const res = await send();
      expectError(res, 400, 'VALIDATION_FAILED');
      expect(issuePaths(res)).toEqual([field]);
      expect(res.body.message).toContain(field);
      expect(res.body.message).toMatch(/surrogate/);
    });
  }

  it('refuses NUL in any text field, naming it', async () => {
    const res = await post('/api/organizations', { name: 'a\u0000b', slug: slug() });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual(['name']);
    expect(res.body.message).toMatch(/name: .*NUL/);
  });

  it('stores well-formed text exactly: astral characters (surrogate pairs) in an organization name and a page', async () => {
    const name = 'Ünïcödé 😀 𝄞 日本';
    const org = await post('/api/organizations', { name, slug: slug() });
    expect(org.status).toBe(201);
    expect(org.body.name).toBe(name);
    const page = await post(`${orgPath(alice)}/pages`, { title: name, content: name });
    expect(page.status).toBe(201);
    const read = await stack.client.request('GET', `${orgPath(alice)}/pages/${page.body.id}`, {
      token: alice.token,
    });
    expect([read.body.title, read.body.content]).toEqual([name, name]);
  });
});

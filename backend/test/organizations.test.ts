import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack, uniqueName } from '../src/testing/api.ts';
import { connectDb, countOf, expectError, issuePaths } from './support/contract.ts';

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

const newSlug = () => uniqueName('org').toLowerCase();

function createOrg(token: string, body: unknown) {
  return stack.client.request('POST', '/api/organizations', { token, body });
}
function addMember(token: string, org: string, body: unknown) {
  return stack.client.request('POST', `/api/organizations/${org}/members`, { token, body });
}
async function membership(orgId: string, userId: string) {
  const [row] =
    await sql`select role from memberships where organization_id = ${orgId} and user_id = ${userId}`;
  return row?.role as string | undefined;
}

describe('creating organizations', () => {
  it('answers 201 with the organization and makes the caller its admin', async () => {
    const { token, user } = await stack.client.signUp();
    const slug = newSlug();
    const res = await createOrg(token, { name: 'Acme Inc.', slug });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
      slug,
      name: 'Acme Inc.',
      role: 'admin',
      createdAt: expect.any(String),
    });
    expect(new Date(res.body.createdAt).toISOString()).toBe(res.body.createdAt);
    expect(await membership(res.body.id, user.id)).toBe('admin');
    const count = await countOf(
      sql`select count(*)::int as count from memberships where organization_id = ${res.body.id}`,
    );
    expect(count).toBe(1);
  });

  it.each([
    ['abc', 'the shortest slug (3 characters)'],
    ['a'.repeat(64), 'the longest slug (64 characters)'],
    ['0-9', 'digits and a hyphen'],
    ['a--b', 'consecutive hyphens inside'],
  ])('accepts the slug %s (%s)', async (slug) => {
    // slugs are global: make each one unique per run while keeping its shape
    const unique = slug.length === 64 ? `${newSlug()}${'a'.repeat(64)}`.slice(0, 64) : slug;
    const res = await createOrg(alice.token, { name: 'ok', slug: unique });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.slug).toBe(unique);
  });

  it.each([
    ['ab', 'too short'],
    ['a'.repeat(65), 'too long'],
    ['Acme', 'upper case'],
    ['-acme', 'a leading hyphen'],
    ['acme-', 'a trailing hyphen'],
    ['ac_me', 'an underscore'],
    ['ac me', 'a space'],
    ['acmé', 'a non-ASCII letter'],
    ['', 'empty'],
  ])('refuses the slug "%s" (%s) with 400 VALIDATION_FAILED and creates nothing', async (slug) => {
    const name = uniqueName('bad-slug');
    const res = await createOrg(alice.token, { name, slug });
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toEqual(['slug']);
    const count = await countOf(sql`select count(*)::int as count from organizations where name = ${name}`);
    expect(count).toBe(0);
  });

  it.each([
    [{ slug: 'no-name-given' }, 'name'],
    [{ name: '   ', slug: 'blank-name' }, 'name'],
    [{ name: 'No slug' }, 'slug'],
    [{ name: 'Wrong type', slug: 42 }, 'slug'],
  ])('refuses %j with 400 VALIDATION_FAILED naming %s', async (body, field) => {
    const res = await createOrg(alice.token, body);
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toContain(field);
  });

  it('answers 409 SLUG_TAKEN for a taken slug and leaves the first organization as it was', async () => {
    const slug = newSlug();
    const first = await createOrg(alice.token, { name: 'First', slug });
    expect(first.status).toBe(201);
    const { token, user } = await stack.client.signUp();
    const res = await createOrg(token, { name: 'Second', slug });
    expectError(res, 409, 'SLUG_TAKEN');
    const rows = await sql`select id, name from organizations where slug = ${slug}`;
    expect(rows).toEqual([{ id: first.body.id, name: 'First' }]);
    expect(await membership(first.body.id, user.id)).toBeUndefined();
  });

  it('creates one organization when 8 requests claim the same slug concurrently', async () => {
    const slug = newSlug();
    const users = await Promise.all(Array.from({ length: 8 }, () => stack.client.signUp()));
    const answers = await Promise.all(users.map((u) => createOrg(u.token, { name: 'Race', slug })));
    const winners = answers.filter((a) => a.status === 201);
    expect(winners).toHaveLength(1);
    for (const loser of answers.filter((a) => a.status !== 201)) expectError(loser, 409, 'SLUG_TAKEN');
    const count = await countOf(sql`
      select count(*)::int as count from memberships m join organizations o on o.id = m.organization_id
      where o.slug = ${slug}`);
    expect(count).toBe(1);
  });
});

describe('creating organizations atomically', () => {
  it('leaves no organization behind when the admin membership cannot be stored, so the slug stays free', async () => {
    await sql.unsafe(`
      create or replace function fail_membership_for_test() returns trigger language plpgsql as $$
      begin
        raise exception 'injected failure' using errcode = '57P03';
      end $$;
      create trigger fail_membership_for_test before insert on memberships
        for each row execute function fail_membership_for_test();`);
    const slug = newSlug();
    try {
      expectError(await createOrg(alice.token, { name: 'Half', slug }), 503, 'SERVICE_UNAVAILABLE');
      expect(await countOf(sql`select count(*)::int as count from organizations where slug = ${slug}`)).toBe(
        0,
      );
    } finally {
      await sql.unsafe(
        'drop trigger fail_membership_for_test on memberships; drop function fail_membership_for_test();',
      );
    }
    expect((await createOrg(alice.token, { name: 'Whole', slug })).status).toBe(201);
  });
});

describe('reading organizations', () => {
  it("lists exactly the caller's organizations with the caller's role in each", async () => {
    const carol = await stack.client.newMember();
    const other = await stack.client.newMember();
    const joined = await addMember(other.token, other.org.id, { email: carol.user.email, role: 'member' });
    expect(joined.status).toBe(201);
    await stack.client.newMember(); // an organization carol has nothing to do with

    const res = await stack.client.request('GET', '/api/organizations', { token: carol.token });
    expect(res.status).toBe(200);
    expect(res.body.items.map((o: any) => [o.id, o.slug, o.role]).sort()).toEqual(
      [
        [carol.org.id, carol.org.slug, 'admin'],
        [other.org.id, other.org.slug, 'member'],
      ].sort(),
    );
    for (const org of res.body.items) {
      expect(Object.keys(org).sort()).toEqual(['createdAt', 'id', 'name', 'role', 'slug']);
    }
  });

  it('answers the same organization by id and by slug', async () => {
    const byId = await stack.client.request('GET', `/api/organizations/${alice.org.id}`, {
      token: alice.token,
    });
    const bySlug = await stack.client.request('GET', `/api/organizations/${alice.org.slug}`, {
      token: alice.token,
    });
    expect(byId.status).toBe(200);
    expect(byId.body).toEqual({
      id: alice.org.id,
      slug: alice.org.slug,
      name: alice.org.slug,
      role: 'admin',
      createdAt: expect.any(String),
    });
    expect(bySlug.body).toEqual(byId.body);
  });

  it('answers 404 to a non-member by id and by slug, exactly as for an organization that does not exist', async () => {
    const stranger = await stack.client.signUp();
    const missing = await stack.client.request('GET', '/api/organizations/no-such-organization', {
      token: stranger.token,
    });
    expectError(missing, 404, 'NOT_FOUND');
    for (const ref of [alice.org.id, alice.org.slug]) {
      const res = await stack.client.request('GET', `/api/organizations/${ref}`, { token: stranger.token });
      expectError(res, 404, 'NOT_FOUND');
      expect(res.body).toEqual(missing.body);
      const pages = await stack.client.request('GET', `/api/organizations/${ref}/pages`, {
        token: stranger.token,
      });
      expect(pages.body).toEqual(missing.body);
    }
  });
});

describe('adding members', () => {
  it('lets an admin add a user by email (any letter case): 201 with the membership', async () => {
    const { user } = await stack.client.signUp();
    const res = await addMember(alice.token, alice.org.slug, {
      email: user.email.toUpperCase(),
      role: 'member',
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      organizationId: alice.org.id,
      userId: user.id,
      email: user.email,
      name: user.name,
      role: 'member',
    });
    expect(await membership(alice.org.id, user.id)).toBe('member');
  });

  it('lets the added member read the organization and its pages, with role member', async () => {
    const page = await stack.client.request('POST', `/api/organizations/${alice.org.id}/pages`, {
      token: alice.token,
      body: { title: 'Welcome', content: 'for the team' },
    });
    expect(page.status).toBe(201);
    const bob = await stack.client.signUp();
    const before = await stack.client.request(
      'GET',
      `/api/organizations/${alice.org.id}/pages/${page.body.id}`,
      {
        token: bob.token,
      },
    );
    expectError(before, 404, 'NOT_FOUND');

    expect(
      (await addMember(alice.token, alice.org.id, { email: bob.user.email, role: 'member' })).status,
    ).toBe(201);

    const org = await stack.client.request('GET', `/api/organizations/${alice.org.slug}`, {
      token: bob.token,
    });
    expect(org.status).toBe(200);
    expect(org.body.role).toBe('member');
    const read = await stack.client.request(
      'GET',
      `/api/organizations/${alice.org.id}/pages/${page.body.id}`,
      {
        token: bob.token,
      },
    );
    expect(read.status).toBe(200);
    expect(read.body).toEqual(page.body);
    const list = await stack.client.request('GET', `/api/organizations/${alice.org.slug}/pages?limit=500`, {
      token: bob.token,
    });
    expect(list.status).toBe(200);
    expect(list.body.items.map((p: any) => p.id)).toContain(page.body.id);
    const mine = await stack.client.request('GET', '/api/me', { token: bob.token });
    expect(mine.body.organizations).toContainEqual({
      id: alice.org.id,
      slug: alice.org.slug,
      name: alice.org.slug,
      role: 'member',
    });
  });

  it('answers 403 FORBIDDEN to a member who is not an admin and adds nobody', async () => {
    const member = await stack.client.signUp();
    await addMember(alice.token, alice.org.id, { email: member.user.email, role: 'member' });
    const outsider = await stack.client.signUp();
    for (const role of ['member', 'admin']) {
      const res = await addMember(member.token, alice.org.id, { email: outsider.user.email, role });
      expectError(res, 403, 'FORBIDDEN');
    }
    // not even themselves to admin
    expectError(
      await addMember(member.token, alice.org.id, { email: member.user.email, role: 'admin' }),
      403,
      'FORBIDDEN',
    );
    expect(await membership(alice.org.id, outsider.user.id)).toBeUndefined();
    expect(await membership(alice.org.id, member.user.id)).toBe('member');
  });

  it('lets a member added as admin add members in turn', async () => {
    const admin2 = await stack.client.signUp();
    await addMember(alice.token, alice.org.id, { email: admin2.user.email, role: 'admin' });
    const newcomer = await stack.client.signUp();
    const res = await addMember(admin2.token, alice.org.id, { email: newcomer.user.email, role: 'member' });
    expect(res.status).toBe(201);
    expect(await membership(alice.org.id, newcomer.user.id)).toBe('member');
  });

  it('answers 404 NOT_FOUND for an email without an account', async () => {
    const res = await addMember(alice.token, alice.org.id, {
      email: 'nobody-here@example.com',
      role: 'member',
    });
    expectError(res, 404, 'NOT_FOUND');
  });

  it('answers 404 to a non-member (not 403), so the organization is not confirmed', async () => {
    const stranger = await stack.client.signUp();
    const res = await addMember(stranger.token, alice.org.id, { email: stranger.user.email, role: 'admin' });
    expectError(res, 404, 'NOT_FOUND');
    expect(await membership(alice.org.id, stranger.user.id)).toBeUndefined();
  });

  it('answers 409 ALREADY_MEMBER for an existing member and keeps their role', async () => {
    const bob = await stack.client.signUp();
    await addMember(alice.token, alice.org.id, { email: bob.user.email, role: 'member' });
    const res = await addMember(alice.token, alice.org.id, { email: bob.user.email, role: 'admin' });
    expectError(res, 409, 'ALREADY_MEMBER');
    expect(await membership(alice.org.id, bob.user.id)).toBe('member');
  });

  it.each([
    [{ email: 'x@example.com', role: 'owner' }, 'role'],
    [{ email: 'x@example.com' }, 'role'],
    [{ role: 'member' }, 'email'],
  ])('refuses %j with 400 VALIDATION_FAILED', async (body, field) => {
    const res = await addMember(alice.token, alice.org.id, body);
    expectError(res, 400, 'VALIDATION_FAILED');
    expect(issuePaths(res)).toContain(field);
  });
});

describe('changing and removing members', () => {
  const memberPath = (org: Member, userId: string) => `/api/organizations/${org.org.slug}/members/${userId}`;
  const patch = (token: string, org: Member, userId: string, body: unknown) =>
    stack.client.request('PATCH', memberPath(org, userId), { token, body });
  const remove = (token: string, org: Member, userId: string) =>
    stack.client.request('DELETE', memberPath(org, userId), { token });

  async function orgWithMember(role: 'admin' | 'member' = 'member') {
    const admin = await stack.client.newMember();
    const other = await stack.client.signUp();
    expect((await addMember(admin.token, admin.org.slug, { email: other.user.email, role })).status).toBe(
      201,
    );
    return { admin, other };
  }

  it('lets an admin change a role: 200 with the membership, and the new role applies', async () => {
    const { admin, other } = await orgWithMember();
    const res = await patch(admin.token, admin, other.user.id, { role: 'admin' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      organizationId: admin.org.id,
      userId: other.user.id,
      email: other.user.email,
      name: other.user.name,
      role: 'admin',
    });
    expect(await membership(admin.org.id, other.user.id)).toBe('admin');
  });

  it('lets an admin remove a member: 204, and the removed user gets 404 for the organization', async () => {
    const { admin, other } = await orgWithMember();
    expect((await remove(admin.token, admin, other.user.id)).status).toBe(204);
    expect(await membership(admin.org.id, other.user.id)).toBeUndefined();
    const read = await stack.client.request('GET', `/api/organizations/${admin.org.slug}`, {
      token: other.token,
    });
    expectError(read, 404, 'NOT_FOUND');
  });

  it('answers 409 LAST_ADMIN to demoting or removing the last admin, who stays admin', async () => {
    const { admin } = await orgWithMember();
    expectError(await patch(admin.token, admin, admin.user.id, { role: 'member' }), 409, 'LAST_ADMIN');
    expectError(await remove(admin.token, admin, admin.user.id), 409, 'LAST_ADMIN');
    expect(await membership(admin.org.id, admin.user.id)).toBe('admin');
  });

  it('lets one of two admins step down or leave', async () => {
    const { admin, other } = await orgWithMember('admin');
    expect((await patch(other.token, admin, admin.user.id, { role: 'member' })).status).toBe(200);
    expectError(await remove(other.token, admin, other.user.id), 409, 'LAST_ADMIN');
    expect((await patch(other.token, admin, admin.user.id, { role: 'admin' })).status).toBe(200);
    expect((await remove(other.token, admin, other.user.id)).status).toBe(204);
  });

  it('never leaves an organization without an admin when two admins demote each other at once', async () => {
    for (let round = 0; round < 10; round++) {
      const { admin, other } = await orgWithMember('admin');
      const answers = await Promise.all([
        patch(admin.token, admin, other.user.id, { role: 'member' }),
        round % 2
          ? remove(other.token, admin, admin.user.id)
          : patch(other.token, admin, admin.user.id, { role: 'member' }),
      ]);
      // the loser finds the last admin (409), that it is no longer admin itself (403), or, when
      // the winner removed it, that it is no longer a member at all (404)
      const statuses = answers.map((res) => res.status);
      expect(
        statuses.filter((status) => status === 200 || status === 204),
        `${statuses}`,
      ).toHaveLength(1);
      const removedFirst = statuses[1] === 204;
      expect(
        statuses.filter((status) => status === 403 || status === 409 || (removedFirst && status === 404)),
        `${statuses}`,
      ).toHaveLength(1);
      const admins = await countOf(
        sql`select count(*)::int as count from memberships where organization_id = ${admin.org.id} and role = 'admin'`,
      );
      expect(admins).toBe(1);
    }
  });

  it('answers 403 FORBIDDEN to a member who is not an admin and changes nothing', async () => {
    const { admin, other } = await orgWithMember();
    expectError(await patch(other.token, admin, admin.user.id, { role: 'member' }), 403, 'FORBIDDEN');
    expectError(await remove(other.token, admin, admin.user.id), 403, 'FORBIDDEN');
    expect(await membership(admin.org.id, admin.user.id)).toBe('admin');
  });

  it('answers 404 for a user who is not a member, and 400 naming the field for a bad role', async () => {
    const { admin } = await orgWithMember();
    const stranger = await stack.client.signUp();
    expectError(await patch(admin.token, admin, stranger.user.id, { role: 'admin' }), 404, 'NOT_FOUND');
    expectError(await remove(admin.token, admin, stranger.user.id), 404, 'NOT_FOUND');
    expectError(await remove(admin.token, admin, 'not/an id'), 404, 'NOT_FOUND');
    const bad = await patch(admin.token, admin, admin.user.id, { role: 'owner' });
    expectError(bad, 400, 'VALIDATION_FAILED');
    expect(issuePaths(bad)).toEqual(['role']);
  });

  it('documents both operations in the OpenAPI document', async () => {
    const doc = await stack.client.request('GET', '/api/openapi.json');
    const path = doc.body.paths['/api/organizations/{org}/members/{userId}'];
    expect(Object.keys(path).sort()).toEqual(['delete', 'patch']);
    expect(path.delete.responses['409']).toBeDefined();
    expect(path.patch.responses['409']).toBeDefined();
  });
});

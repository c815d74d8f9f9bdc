/**
 * The API's multi-statement transactions (sign-up: the user and its first session; a new
 * organization: it and its creator's admin membership) across restarts of PostgreSQL while
 * requests are in flight. Every request gets 2xx or 503, and nothing is half-written: once
 * with the transactions held half-way by a lock when the server stops, once under free-running
 * load. (A transaction whose connection closed once went on outside any transaction after the
 * pool reconnected; postgres.js is patched for it, see the README.)
 */
import { sleep } from '@sync/db/timers';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApiResponse } from '../src/api-client.ts';
import { startTestStack, type TestStack } from '../src/testing/api.ts';

let stack: TestStack;
let sql: postgres.Sql;

beforeAll(async () => {
  stack = await startTestStack();
  sql = postgres(stack.cluster.url, { onnotice: () => {}, max: 2 });
});
afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await stack?.stop();
});

const PREFIX = `restart-${Date.now().toString(36)}`;
let serial = 0;
const next = () => `${PREFIX}-${serial++}`;

type Kind = 'sign-up' | 'organization';
const answers: { kind: Kind; status: number; name: string }[] = [];

/** An answer, or status 0 when none came within ANSWER_MS. */
const ANSWER_MS = 10_000;
async function send(path: string, options: { token?: string; body: unknown }): Promise<ApiResponse> {
  const late = sleep(ANSWER_MS).then(() => ({ status: 0, headers: new Headers(), body: null }));
  return Promise.race([stack.client.request('POST', path, options), late]);
}

async function signUp(): Promise<string | null> {
  const name = next();
  const res = await send('/api/auth/sign-up', {
    body: { email: `${name}@example.com`, password: 'correct horse battery' },
  });
  answers.push({ kind: 'sign-up', status: res.status, name });
  return res.status === 201 ? res.body.token : null;
}

async function createOrganization(token: string): Promise<void> {
  const slug = next();
  const res = await send('/api/organizations', { token, body: { name: slug, slug } });
  answers.push({ kind: 'organization', status: res.status, name: slug });
}

/** Sign-ups and organization creations, two loops of each, until `running.done`. */
async function load(tokens: string[], running: { done: boolean }): Promise<void> {
  const loop = async (step: () => Promise<void>) => {
    while (!running.done) {
      const before = answers.length;
      await step();
      if (answers[before]?.status === 503) await sleep(50);
    }
  };
  const signUps = () =>
    loop(async () => {
      await signUp();
    });
  const organizations = (token: string) => loop(() => createOrganization(token));
  await Promise.all([signUps(), signUps(), ...tokens.map(organizations)]);
}

async function waitingOn(table: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where wait_event_type = 'Lock' and query like ${`insert into ${table}%`}`;
  return row?.n ?? 0;
}

async function until(check: () => Promise<boolean>, what: string) {
  const deadline = Date.now() + 15_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

async function restart() {
  await stack.cluster.stop();
  await stack.cluster.start();
}

const successesSince = (from: number, kind: Kind) =>
  answers.slice(from).filter((a) => a.kind === kind && a.status < 300).length;

it('answers 2xx or 503 to sign-ups and new organizations across restarts, and writes each whole or not at all', {
  timeout: 60_000,
}, async () => {
  const tokens = [(await signUp()) ?? '', (await signUp()) ?? ''];
  const running = { done: false };
  const loops = load(tokens, running);
  try {
    // 1. Hold every transaction half-way (its first row written, the second waiting for a
    //    lock), then stop the server under them.
    await until(async () => successesSince(0, 'organization') > 2, 'the load runs');
    let halfWay = 0;
    let restarted: Promise<void> | undefined;
    await sql
      .begin(async (tx) => {
        await tx`lock table sessions, memberships in exclusive mode`;
        await until(
          async () => (await waitingOn('sessions')) >= 2 && (await waitingOn('memberships')) >= 2,
          'sign-ups and organizations wait half-way',
        );
        halfWay = answers.length;
        restarted = restart();
        await restarted;
      })
      .catch(() => {}); // its connection goes with the server, which rejects it at once
    await restarted;
    await until(
      async () => successesSince(halfWay, 'sign-up') > 0 && successesSince(halfWay, 'organization') > 0,
      'both succeed again after the first restart',
    );
    // 2. Restart under free-running load.
    const second = answers.length;
    await restart();
    await until(
      async () => successesSince(second, 'sign-up') > 0 && successesSince(second, 'organization') > 0,
      'both succeed again after the second restart',
    );
  } finally {
    running.done = true;
    await loops;
  }

  // no other status, and none unanswered (0)
  const statuses = new Set(answers.map((a) => a.status));
  expect([...statuses].filter((status) => status !== 201 && status !== 503)).toEqual([]);
  expect(answers.filter((a) => a.status === 503).length).toBeGreaterThanOrEqual(4);

  const orphanUsers = await sql<{ email: string }[]>`
    select email from users u
    where email like ${`${PREFIX}-%`} and not exists (select 1 from sessions s where s.user_id = u.id)`;
  expect(orphanUsers).toEqual([]);
  const orphanOrganizations = await sql<{ slug: string }[]>`
    select slug from organizations o
    where slug like ${`${PREFIX}-%`} and not exists (
      select 1 from memberships m
      where m.organization_id = o.id and m.user_id = o.created_by and m.role = 'admin')`;
  expect(orphanOrganizations).toEqual([]);
  // every one answered 201 is there
  const users = new Set(
    (await sql<{ email: string }[]>`select email from users where email like ${`${PREFIX}-%`}`).map(
      (r) => r.email,
    ),
  );
  const organizations = new Set(
    (await sql<{ slug: string }[]>`select slug from organizations where slug like ${`${PREFIX}-%`}`).map(
      (r) => r.slug,
    ),
  );
  for (const answer of answers.filter((a) => a.status === 201)) {
    if (answer.kind === 'sign-up') expect(users.has(`${answer.name}@example.com`)).toBe(true);
    else expect(organizations.has(answer.name)).toBe(true);
  }
});

/**
 * Assertions for the HTTP contract (docs/API.md) shared by the suites: the error JSON shape, fresh
 * transaction ids and a direct PostgreSQL connection for checking what was (not) written.
 */
import postgres from 'postgres';
import { expect } from 'vitest';
import type { ApiResponse } from '../../src/testing/api.ts';

/** The short `error` word of each status, as clients see it. */
export const ERROR_WORD: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  429: 'rate_limited',
  503: 'unavailable',
};

/**
 * Asserts an error answer exactly: status, JSON content type, `{ error, code, message }` and no
 * keys besides `extraKeys` (plus `issues`, which VALIDATION_FAILED always carries).
 */
export function expectError(res: ApiResponse, status: number, code: string, extraKeys: string[] = []) {
  const context = `${status} ${code}: ${JSON.stringify(res.body)?.slice(0, 500)}`;
  expect(res.status, context).toBe(status);
  expect(res.headers.get('content-type'), context).toMatch(/^application\/json/);
  expect(res.body, context).toMatchObject({ error: ERROR_WORD[status], code, message: expect.any(String) });
  expect(res.body.message.length, context).toBeGreaterThan(0);
  const keys = ['error', 'code', 'message', ...extraKeys];
  if (code === 'VALIDATION_FAILED' || code === 'INVALID_HEADER') keys.push('issues');
  expect(Object.keys(res.body).sort(), context).toEqual([...new Set(keys)].sort());
  if (keys.includes('issues')) expectIssues(res.body.issues);
}

export function expectIssues(issues: unknown) {
  expect(Array.isArray(issues)).toBe(true);
  const list = issues as unknown[];
  expect(list.length).toBeGreaterThan(0);
  for (const issue of list) {
    expect(issue).toEqual({ path: expect.any(Array), message: expect.any(String) });
  }
}

/** The paths named by a VALIDATION_FAILED answer's issues, joined with dots. */
export function issuePaths(res: ApiResponse): string[] {
  return (res.body.issues as { path: (string | number)[] }[]).map((issue) => issue.path.join('.'));
}

let seq = 0;
/** A fresh, valid transaction id in the clients' `{base36 time}-{suffix}` form. */
export const txId = (prefix = 'tx') =>
  `${prefix}-${Date.now().toString(36)}-${process.pid.toString(36)}${(++seq).toString(36).padStart(5, '0')}`;

/** The base path of a member's organization. */
export const orgPath = (member: { org: { slug: string } }) => `/api/organizations/${member.org.slug}`;

export function connectDb(url: string): postgres.Sql {
  return postgres(url, { onnotice: () => {}, max: 4 });
}

/** Row counts of the tables a tracked write touches. */
export async function writeCounts(sql: postgres.Sql) {
  const [row] = await sql<{ pages: number; attachments: number; applied: number }[]>`
    select (select count(*)::int from pages) as pages,
           (select count(*)::int from attachments) as attachments,
           (select count(*)::int from applied_transactions) as applied`;
  return row!;
}

/** The number a one-row `select count(*)::int as count …` answers. */
export async function countOf(query: PromiseLike<readonly { count?: unknown }[]>): Promise<number> {
  const [row] = await query;
  return Number(row?.count);
}

/** Resolves once the CDC worker has written the activity of `transactionId` (10 s at most). */
export async function waitForActivity(sql: postgres.Sql, transactionId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [row] = await sql`select 1 from activities where transaction_id = ${transactionId}`;
    if (row) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no activity for ${transactionId}`);
}

/** The query of the first live request after a shape's snapshot: its handle and offset, `live=true`. */
export async function liveQueryAfterSnapshot(shapeUrl: string, token: string): Promise<URLSearchParams> {
  const first = await fetch(`${shapeUrl}?offset=-1&log=full`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await first.arrayBuffer();
  return new URLSearchParams({
    cursor: '',
    handle: first.headers.get('electric-handle') ?? '',
    live: 'true',
    log: 'full',
    offset: first.headers.get('electric-offset') ?? '',
  });
}

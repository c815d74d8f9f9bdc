/**
 * Writes to tracked tables by plain SQL, stamped the way the API stamps them (transactions
 * jsonb, last_client_id, modified_by, soft delete), plus small helpers the CDC suites share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type postgres from 'postgres';
import { WORKER_NODE_FLAGS } from '../../src/constants.ts';

type Sql = postgres.Sql | postgres.TransactionSql;

export const testLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function seedTenants(
  sql: Sql,
  organizationIds: readonly string[],
  userId = 'user_1',
): Promise<void> {
  await sql`insert into users (id, email, name, password_hash) values (${userId}, ${`${userId}@example.com`}, 'Test', 'x')
    on conflict do nothing`;
  for (const id of organizationIds) {
    await sql`insert into organizations (id, slug, name, created_by) values (${id}, ${id}, ${id}, ${userId})
      on conflict do nothing`;
  }
}

export interface Stamp {
  tx: string;
  user?: string;
  client?: string;
}

export async function createPage(
  sql: Sql,
  page: { id: string; org: string; title?: string } & Stamp,
): Promise<void> {
  await sql`
    insert into pages (id, organization_id, created_by, transactions, last_client_id, title)
    values (${page.id}, ${page.org}, ${page.user ?? 'user_1'},
      ${sql.json({ insert: page.tx, update: null, delete: null })}, ${page.client ?? 'client_1'}, ${page.title ?? page.id})`;
}

export async function updatePage(sql: Sql, page: { id: string; title: string } & Stamp): Promise<number> {
  const result = await sql`
    update pages set title = ${page.title}, modified_at = now(), modified_by = ${page.user ?? 'user_1'},
      last_client_id = ${page.client ?? 'client_1'},
      transactions = jsonb_set(transactions, '{update}', to_jsonb(${page.tx}::text))
    where id = ${page.id} and deleted_at is null`;
  return result.count;
}

export async function softDeletePage(sql: Sql, page: { id: string } & Stamp): Promise<number> {
  const result = await sql`
    update pages set deleted_at = now(), modified_at = now(), modified_by = ${page.user ?? 'user_1'},
      last_client_id = ${page.client ?? 'client_1'},
      transactions = jsonb_set(transactions, '{delete}', to_jsonb(${page.tx}::text))
    where id = ${page.id} and deleted_at is null`;
  return result.count;
}

export async function createAttachment(
  sql: Sql,
  attachment: { id: string; org: string; pageId: string | null; filename?: string } & Stamp,
): Promise<void> {
  await sql`
    insert into attachments (id, organization_id, created_by, transactions, last_client_id, page_id, filename, content_type, size, url)
    values (${attachment.id}, ${attachment.org}, ${attachment.user ?? 'user_1'},
      ${sql.json({ insert: attachment.tx, update: null, delete: null })}, ${attachment.client ?? 'client_1'},
      ${attachment.pageId}, ${attachment.filename ?? 'file.png'}, 'image/png', 2048, 'https://example.com/f.png')`;
}

/** Live rows per organization and type, as entity_counts should hold them. */
export async function liveCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ key: string; count: number }[]>`
    select 'page/' || organization_id as key, count(*)::int as count from pages where deleted_at is null group by 1
    union all
    select 'attachment/' || organization_id, count(*)::int from attachments where deleted_at is null group by 1`;
  return Object.fromEntries(rows.map((r) => [r.key, r.count]));
}

export async function storedCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql<{ key: string; count: number }[]>`
    select entity_type || '/' || organization_id as key, count::int from entity_counts where count <> 0`;
  return Object.fromEntries(rows.map((r) => [r.key, r.count]));
}

export function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((key) => (a[key] ?? 0) === (b[key] ?? 0));
}

export async function activityCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ count: number }[]>`select count(*)::int as count from activities`;
  return row?.count ?? 0;
}

export async function waitFor<T>(
  probe: () => Promise<T | false | null | undefined>,
  { timeoutMs = 20_000, what = 'condition' }: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | false | null | undefined;
  while (Date.now() < deadline) {
    last = await probe().catch(() => undefined);
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function waitForActivities(sql: Sql, expected: number, timeoutMs = 30_000): Promise<void> {
  let seen = 0;
  await waitFor(
    async () => {
      seen = await activityCount(sql);
      if (seen > expected) throw new Error(`more activities (${seen}) than changes (${expected})`);
      return seen === expected;
    },
    { timeoutMs, what: `${expected} activities` },
  ).catch((error) => {
    throw new Error(`${(error as Error).message} (have ${seen})`);
  });
}

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

/** The standalone worker (`cdc/src/main.ts`) as a child process: one node process, so kill -9 hits the worker itself. */
export function spawnWorker(databaseUrl: string, env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [...WORKER_NODE_FLAGS, '--import', 'tsx', MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

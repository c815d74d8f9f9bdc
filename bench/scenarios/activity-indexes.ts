/**
 * Scenario `activity-indexes`: what a form of the transaction index costs each activity row the
 * CDC worker writes. Copies of `activities` with the same primary key and secondary indexes, each
 * with one form of the transaction lookup (or none), get the same rows in interleaved rounds:
 *
 *   round ──► per form: truncate · insert PRELOAD rows (a log that is not empty) · checkpoint
 *                        · insert ROWS more, measured: the backend's CPU (utime + stime) per row
 *
 * Printed: the median per form, as a ratio to the form `activities` has (`transaction_id`).
 * BENCH_INDEX_TX picks the transaction ids: `uuid` (random, as clients make them; default),
 * `sequence` (`tx_c_<n>`, as the cdc scenario writes them) or `repeated` (every measured row
 * shares one id, as when one row is written often outside the API). BENCH_INDEX_ROWS (50000),
 * BENCH_INDEX_PRELOAD (200000) and BENCH_INDEX_ROUNDS (5) scale it.
 */
import { readFile } from 'node:fs/promises';
import { startEmbeddedPostgres } from '@sync/db/embedded-postgres';
import { runMigrations } from '@sync/db/migrations';
import postgres from 'postgres';

const ROWS = Number(process.env.BENCH_INDEX_ROWS ?? 50_000);
const PRELOAD = Number(process.env.BENCH_INDEX_PRELOAD ?? 200_000);
const ROUNDS = Number(process.env.BENCH_INDEX_ROUNDS ?? 5);
const TRANSACTION_IDS = process.env.BENCH_INDEX_TX ?? 'uuid';

/** The forms of the transaction lookup; `%t` is the table. The first is what `activities` has. */
const FORMS: Record<string, string | null> = {
  transaction_id: 'create index on %t (transaction_id)',
  'organization_id, transaction_id': 'create index on %t (organization_id, transaction_id)',
  'hash (transaction_id)': 'create index on %t using hash (transaction_id)',
  'hashtext(transaction_id)': 'create index on %t (hashtext(transaction_id))',
  none: null,
};

/** The other indexes of `activities`, which every form pays alike. */
const SHARED_INDEXES = [
  'alter table %t add primary key (lsn, position)',
  'create index on %t (organization_id, lsn, position)',
  'create index on %t (organization_id, entity_id, lsn, position)',
  'create index on %t (organization_id, undoes_transaction_id) where undoes_transaction_id is not null',
];

const COLUMNS =
  'lsn, position, type, action, entity_type, entity_id, organization_id, user_id, transaction_id, client_id, changed_keys, row, previous_values, undoes_transaction_id, xid, created_at';

export async function run(): Promise<void> {
  const cluster = await startEmbeddedPostgres();
  const sql = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  try {
    await runMigrations(cluster.url);
    await sql.unsafe('create table source_rows (like activities)');
    await sql.unsafe(`
      insert into source_rows (${COLUMNS})
      select i::int8 * 1000, 0, 'page.created', 'create', 'page', 'page_' || i, 'org_' || (i % 20), 'bench_user',
        ${transactionIdSql()}, 'client_' || (i % 7), array['title', 'content'],
        jsonb_build_object('id', 'page_' || i, 'title', 'Page ' || i, 'content', repeat('lorem ipsum ', 8)),
        null, null, i, now()
      from generate_series(1, ${PRELOAD + ROWS}) as i`);
    const tables = Object.keys(FORMS).map((form, i) => ({ form, table: `activities_form_${i}` }));
    for (const { form, table } of tables) {
      await sql.unsafe(`create table ${table} (like activities including defaults including constraints)`);
      const own = FORMS[form];
      for (const ddl of own ? [...SHARED_INDEXES, own] : SHARED_INDEXES)
        await sql.unsafe(ddl.replace('%t', table));
    }
    const [session] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const pid = session?.pid ?? 0;
    const perRow = new Map<string, number[]>();
    const boundary = PRELOAD * 1000;
    for (let round = 0; round < ROUNDS; round++) {
      for (const { form, table } of tables) {
        await sql.unsafe(`truncate ${table}`);
        await sql.unsafe(`insert into ${table} select * from source_rows where lsn <= ${boundary}`);
        await sql.unsafe('checkpoint');
        const before = await cpuSeconds(pid);
        await sql.unsafe(`insert into ${table} select * from source_rows where lsn > ${boundary}`);
        const used = (await cpuSeconds(pid)) - before;
        perRow.set(form, [...(perRow.get(form) ?? []), (used / ROWS) * 1e6]);
      }
    }
    const base = median(perRow.get('transaction_id') ?? []);
    console.log(
      `${ROWS.toLocaleString('en-US')} rows after ${PRELOAD.toLocaleString('en-US')}, transaction ids: ${TRANSACTION_IDS}, ${ROUNDS} interleaved rounds`,
    );
    for (const [form, values] of perRow) {
      const mid = median(values);
      console.log(
        `${form.padEnd(34)} ${mid.toFixed(1)} µs per row (${(mid / base).toFixed(2)}x)   rounds: ${values.map((v) => v.toFixed(1)).join(' ')}`,
      );
    }
  } finally {
    await sql.end({ timeout: 2 });
    await cluster.destroy();
  }
}

function transactionIdSql(): string {
  if (TRANSACTION_IDS === 'sequence') return `'tx_c_' || i`;
  if (TRANSACTION_IDS === 'repeated')
    return `case when i > ${PRELOAD} then 'tx_repeated' else gen_random_uuid()::text end`;
  return 'gen_random_uuid()::text';
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

/** CPU seconds of a process so far (utime + stime from /proc, in clock ticks of 10 ms). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
}

/**
 * How the tracked core talks to the driver: each write builds one postgres.js query, its
 * statement, and that statement's text is the same for every write of a column set, so it is
 * prepared once per connection. (Building a fragment per name and column on every request cost a
 * tracked write about a fifth of its throughput; see the README's write benchmark.)
 */
import * as schema from '@sync/db/schema';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTracked,
  deleteTracked,
  undoTracked,
  updateTracked,
  type WriteContext,
} from '../src/core/tracked/tracked-operations.ts';
import { pageEntity } from '../src/modules/pages/page-entity.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { txId } from './support/contract.ts';

let stack: TestStack;
let client: postgres.Sql;
let alice: Member;
/** Calls of the client itself: tagged templates (statements and fragments) and `sql(name)`. */
let driverCalls = 0;

/** The tracked core on one connection, with every call of the client counted. */
function countedDb() {
  const counted = new Proxy(client, {
    apply(target, thisArg, args) {
      driverCalls += 1;
      return Reflect.apply(target, thisArg, args);
    },
  });
  return drizzle(counted, { schema });
}
let db: ReturnType<typeof countedDb>;

beforeAll(async () => {
  stack = await startTestStack();
  client = postgres(stack.cluster.url, { max: 1, onnotice: () => {} });
  db = countedDb();
  alice = await stack.client.newMember();
});
afterAll(async () => {
  await client?.end();
  await stack?.stop();
});

const context = (expectedTransactionId: string | null = null): WriteContext => ({
  transactionId: txId(),
  clientId: 'client_001',
  expectedTransactionId,
  organizationId: alice.org.id,
  userId: alice.user.id,
});

/** The driver calls one write makes. */
async function callsOf(write: () => Promise<unknown>): Promise<number> {
  const before = driverCalls;
  await write();
  return driverCalls - before;
}

/** Executions of each prepared statement on the connection, by its text's opening. */
async function preparedWrites(): Promise<{ statement: string; executions: number }[]> {
  const rows = await client<{ statement: string; executions: number }[]>`
    select regexp_replace(statement, '\\s+', ' ', 'g') as statement, generic_plans + custom_plans as executions
    from pg_prepared_statements
    where statement like '%insert into applied_transactions%'
    order by prepare_time`;
  return rows.map((r) => ({ statement: r.statement, executions: Number(r.executions) }));
}

describe('tracked write statements', () => {
  it('build one query per write once a column set was written: no fragment per request', async () => {
    // the first write of each column set builds its column list, once
    const first = await createTracked(db, pageEntity, context(), { title: 'First' });
    await updateTracked(db, pageEntity, context(), first.entity.id, { title: 'First, edited' });
    await deleteTracked(db, pageEntity, context(), first.entity.id);

    const created = await createTracked(db, pageEntity, context(), { title: 'Second' });
    const page = created.entity;
    expect(await callsOf(() => createTracked(db, pageEntity, context(), { title: 'Third' }))).toBe(1);
    expect(
      await callsOf(() =>
        updateTracked(db, pageEntity, context(page.transactions.insert), page.id, { title: 'Edited' }),
      ),
    ).toBe(1);
    expect(await callsOf(() => deleteTracked(db, pageEntity, context(), page.id))).toBe(1);
  });

  it('prepare each statement once per connection: updates, deletes and undos of a column set share one', async () => {
    const before = await preparedWrites();
    const a = await createTracked(db, pageEntity, context(), { title: 'A' });
    const b = await createTracked(db, pageEntity, context(), { title: 'B' });
    await updateTracked(db, pageEntity, context(a.entity.transactions.insert), a.entity.id, { title: 'A2' });
    const b2 = await updateTracked(db, pageEntity, context(), b.entity.id, { title: 'B2' });
    await undoTracked(db, pageEntity, context(), {
      undoes: b2.entity.transactions.update ?? '',
      entityId: b.entity.id,
      action: 'update',
      fields: { title: 'B' },
      deletedAt: 'keep',
    });
    const deleted = await deleteTracked(db, pageEntity, context(), a.entity.id);
    await undoTracked(db, pageEntity, context(), {
      undoes: deleted.entity.transactions.delete ?? '',
      entityId: a.entity.id,
      action: 'update',
      fields: {},
      deletedAt: 'clear',
    });
    const after = await preparedWrites();

    // nothing new was prepared: the first test's writes prepared every statement these use
    expect(after.map((s) => s.statement)).toEqual(before.map((s) => s.statement));
    const runs = (opening: RegExp) => {
      const matching = after.filter((s) => opening.test(s.statement));
      expect(matching).toHaveLength(1);
      const was = before.find((s) => s.statement === matching[0]?.statement)?.executions ?? 0;
      return (matching[0]?.executions ?? 0) - was;
    };
    expect(runs(/insert into "pages" \( "title"/)).toBe(2); // the two creates
    expect(runs(/update "pages" set \( "title"/)).toBe(3); // two updates, one with a version, and an undo
    expect(runs(/update "pages" set \( "modified_by"/)).toBe(2); // a delete and the undo that restores
  });
});

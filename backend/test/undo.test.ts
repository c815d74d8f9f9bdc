/**
 * Undo of a transaction from the activity log, on the real stack: embedded PostgreSQL, the API
 * over HTTP, the CDC worker, and the official Electric client on the shape endpoint. An undo is
 * a tracked write of its own: idempotent by its transaction id, lock-checked against the version
 * the undone transaction produced, audited with the transaction it undoes.
 */
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { matchStream } from '@electric-sql/experimental';
import { type CdcWorker, startCdcWorker } from '@sync/cdc/worker';
import fc from 'fast-check';
import pino from 'pino';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiResponse, type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, countOf, expectError, orgPath, txId, writeCounts } from './support/contract.ts';

const UNDO_RECORD_WAIT_MS = 3_000;

let stack: TestStack;
let worker: CdcWorker;
let sql: postgres.Sql;
let alice: Member;
/** A second member of alice's organization: "someone else". */
let ana: Member;
let mallory: Member;
const streams: AbortController[] = [];

const startWorker = async () => {
  worker = startCdcWorker({ databaseUrl: stack.cluster.url, logger: pino({ level: 'silent' }) });
  await worker.streaming();
};

beforeAll(async () => {
  stack = await startTestStack({ config: { undoRecordWaitMs: UNDO_RECORD_WAIT_MS, shapeLongPollMs: 3_000 } });
  await startWorker();
  sql = connectDb(stack.cluster.url);
  [alice, mallory] = await Promise.all([stack.client.newMember(), stack.client.newMember()]);
  const { token, user } = await stack.client.signUp();
  const added = await stack.client.request('POST', `${orgPath(alice)}/members`, {
    token: alice.token,
    body: { email: user.email, role: 'member' },
  });
  expect(added.status).toBe(201);
  ana = { token, user, org: alice.org };
});
afterAll(async () => {
  for (const controller of streams) controller.abort();
  await worker?.stop();
  await sql?.end();
  await stack?.stop();
});

function write(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  m: Member = alice,
): Promise<ApiResponse> {
  return stack.client.request(method, path, {
    token: m.token,
    body,
    headers: { 'x-transaction-id': txId('tx-undo'), ...headers },
  });
}

const undo = (transactionId: string, undoTx = txId('tx-undo'), m: Member = alice) =>
  write(
    'POST',
    `${orgPath(m)}/transactions/${transactionId}/undo`,
    undefined,
    { 'x-transaction-id': undoTx, 'x-client-id': 'client_undo' },
    m,
  );

async function createPage(body: Record<string, unknown>, m: Member = alice) {
  const res = await write('POST', `${orgPath(m)}/pages`, body, {}, m);
  expect(res.status).toBe(201);
  return { page: res.body, tx: res.headers.get('x-transaction-id')! };
}

/** The activity that records a transaction, once the CDC worker has written it. */
async function recorded(transactionId: string, m: Member = alice, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await stack.client.request('GET', `${orgPath(m)}/transactions/${transactionId}`, {
      token: m.token,
    });
    if (res.status === 200) return res.body.activity;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`transaction ${transactionId} was not recorded in ${timeoutMs} ms`);
}

const pageCount = async (m: Member = alice) =>
  (await stack.client.request('GET', `${orgPath(m)}/counts`, { token: m.token })).body.counts.page as number;

/** Counts follow the activity log: read them once the given transaction is recorded. */
async function countsAfter(transactionId: string) {
  await recorded(transactionId);
  return pageCount();
}

async function liveShape(m: Member = alice) {
  const controller = new AbortController();
  streams.push(controller);
  const stream = new ShapeStream<Row>({
    url: `${stack.api.url}${orgPath(m)}/shapes/pages`,
    headers: { authorization: `Bearer ${m.token}` },
    signal: controller.signal,
  });
  const shape = new Shape(stream);
  await shape.rows;
  return { stream, shape };
}

const shapeRow = (shape: Shape<Row>, id: string) =>
  [...shape.currentValue.values()].find((row) => row.id === id) as Record<string, unknown> | undefined;

describe('undo of each kind of transaction', () => {
  it('undoes a create with a soft delete, seen in REST, the feed, the counts and a shape client', async () => {
    const { stream, shape } = await liveShape();
    const { page, tx } = await createPage({ title: 'Created by mistake' });
    const before = await countsAfter(tx);

    const undoTx = txId('tx-undo');
    const deleted = matchStream(
      stream,
      ['delete'],
      (m: any) => m.value.transactions?.delete === undoTx,
      10_000,
    );
    const res = await undo(tx, undoTx);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('x-transaction-id')).toBe(undoTx);
    expect(res.headers.get('x-idempotent-hit')).toBeNull();
    expect(res.body).toMatchObject({ id: page.id, title: 'Created by mistake', lastClientId: 'client_undo' });
    expect(res.body.deletedAt).not.toBeNull();
    expect(res.body.transactions).toMatchObject({
      insert: tx,
      delete: undoTx,
      undo: { transactionId: undoTx, undoes: tx },
    });

    expectError(
      await stack.client.request('GET', `${orgPath(alice)}/pages/${page.id}`, { token: alice.token }),
      404,
      'NOT_FOUND',
    );
    const activity = await recorded(undoTx);
    expect(activity).toMatchObject({
      type: 'page.deleted',
      action: 'delete',
      entityId: page.id,
      userId: alice.user.id,
      clientId: 'client_undo',
      undoesTransactionId: tx,
    });
    expect(await pageCount()).toBe(before - 1);
    await deleted;
    expect(shapeRow(shape, page.id)).toBeUndefined();
    // the feed answers "was it undone?"
    const undos = await stack.client.request(
      'GET',
      `${orgPath(alice)}/activities?undoesTransactionId=${tx}`,
      {
        token: alice.token,
      },
    );
    expect(undos.body.items.map((a: any) => a.transactionId)).toEqual([undoTx]);
  });

  it('undoes an update by setting back only the keys it changed, everywhere', async () => {
    const { stream, shape } = await liveShape();
    const { page } = await createPage({ title: 'Plan', content: 'the body' });
    const path = `${orgPath(alice)}/pages/${page.id}`;
    const renamed = await write('PATCH', path, { title: 'Draft', content: 'the body' });
    expect(renamed.status).toBe(200);
    const renameTx = renamed.headers.get('x-transaction-id')!;
    expect(await recorded(renameTx)).toMatchObject({
      changedKeys: ['title'],
      previousValues: { title: 'Plan' },
    });
    const [stored] =
      await sql`select title, content, created_at, created_by from pages where id = ${page.id}`;
    const before = await pageCount();

    const undoTx = txId('tx-undo');
    const updated = matchStream(
      stream,
      ['update'],
      (m: any) => m.value.transactions?.update === undoTx,
      10_000,
    );
    const res = await undo(renameTx, undoTx);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: page.id, title: 'Plan', content: 'the body', deletedAt: null });
    expect(res.body.transactions).toMatchObject({ insert: page.transactions.insert, update: undoTx });
    const [after] = await sql`select title, content, created_at, created_by from pages where id = ${page.id}`;
    expect(after).toEqual({ ...stored, title: 'Plan' });

    const rest = await stack.client.request('GET', path, { token: alice.token });
    expect(rest.body).toMatchObject({ title: 'Plan', content: 'the body' });
    const activity = await recorded(undoTx);
    expect(activity).toMatchObject({
      type: 'page.updated',
      action: 'update',
      changedKeys: ['title'],
      previousValues: { title: 'Draft' },
      undoesTransactionId: renameTx,
    });
    expect(await pageCount()).toBe(before);
    expect((await updated).value.title).toBe('Plan');
    expect(shapeRow(shape, page.id)).toMatchObject({ title: 'Plan', content: 'the body' });
  });

  it('undoes an attachment update field by field through the same generic path', async () => {
    const created = await write('POST', `${orgPath(alice)}/attachments`, {
      filename: 'plan.pdf',
      contentType: 'application/pdf',
      size: 1234,
      url: 'https://files.example.com/plan.pdf',
    });
    const patched = await write('PATCH', `${orgPath(alice)}/attachments/${created.body.id}`, {
      filename: 'renamed.pdf',
      size: 99,
    });
    const patchTx = patched.headers.get('x-transaction-id')!;
    await recorded(patchTx);
    const res = await undo(patchTx);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      filename: 'plan.pdf',
      size: 1234,
      contentType: 'application/pdf',
      url: 'https://files.example.com/plan.pdf',
    });
    expect((await recorded(res.headers.get('x-transaction-id')!)).changedKeys.sort()).toEqual([
      'filename',
      'size',
    ]);
  });

  it('undoes a delete by restoring the entity, which a shape client sees enter again', async () => {
    const { stream, shape } = await liveShape();
    const { page } = await createPage({ title: 'Deleted by mistake', content: 'keep me' });
    const path = `${orgPath(alice)}/pages/${page.id}`;
    const removed = await write('DELETE', path);
    const deleteTx = removed.headers.get('x-transaction-id')!;
    const before = await countsAfter(deleteTx);

    const undoTx = txId('tx-undo');
    const restored = matchStream(
      stream,
      ['insert'],
      (m: any) => m.value.transactions?.update === undoTx,
      10_000,
    );
    const res = await undo(deleteTx, undoTx);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      id: page.id,
      title: 'Deleted by mistake',
      content: 'keep me',
      deletedAt: null,
    });
    expect(res.body.transactions).toMatchObject({
      update: undoTx,
      undo: { transactionId: undoTx, undoes: deleteTx },
    });

    expect((await stack.client.request('GET', path, { token: alice.token })).status).toBe(200);
    const activity = await recorded(undoTx);
    expect(activity).toMatchObject({
      type: 'page.updated',
      action: 'update',
      changedKeys: ['deleted_at'],
      undoesTransactionId: deleteTx,
    });
    expect(await pageCount()).toBe(before + 1);
    expect((await restored).value.title).toBe('Deleted by mistake');
    expect(shapeRow(shape, page.id)).toMatchObject({ title: 'Deleted by mistake' });
  });

  it('redoes a change by undoing its undo', async () => {
    const { page } = await createPage({ title: 'Plan' });
    const renamed = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Draft' });
    const renameTx = renamed.headers.get('x-transaction-id')!;
    await recorded(renameTx);
    const undone = await undo(renameTx);
    expect(undone.body.title).toBe('Plan');
    const undoTx = undone.headers.get('x-transaction-id')!;
    await recorded(undoTx);
    const redone = await undo(undoTx);
    expect(redone.status, JSON.stringify(redone.body)).toBe(200);
    expect(redone.body.title).toBe('Draft');
    expect(await recorded(redone.headers.get('x-transaction-id')!)).toMatchObject({
      undoesTransactionId: undoTx,
    });
    // and the undo of a create, undone, is the page restored
    const { page: second, tx } = await createPage({ title: 'Again' });
    await recorded(tx);
    const deleted = await undo(tx);
    await recorded(deleted.headers.get('x-transaction-id')!);
    const back = await undo(deleted.headers.get('x-transaction-id')!);
    expect(back.body).toMatchObject({ id: second.id, deletedAt: null });
  });
});

describe('exactly once and never over a later change', () => {
  it('applies one undo replayed 10 times concurrently once: one write, nine idempotent hits, one activity', async () => {
    const { page } = await createPage({ title: 'Plan' });
    const renamed = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Draft' });
    const renameTx = renamed.headers.get('x-transaction-id')!;
    await recorded(renameTx);
    const undoTx = txId('tx-undo');

    const answers = await Promise.all(Array.from({ length: 10 }, () => undo(renameTx, undoTx)));
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(answers.filter((r) => r.headers.get('x-idempotent-hit') === 'true')).toHaveLength(9);
    for (const r of answers)
      expect(r.body).toMatchObject({ title: 'Plan', transactions: { update: undoTx } });
    expect(
      await countOf(
        sql`select count(*)::int as count from applied_transactions where transaction_id = ${undoTx}`,
      ),
    ).toBe(1);

    // a later, different change: a replay of the undo still applies nothing
    const later = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Later' });
    const laterTx = later.headers.get('x-transaction-id')!;
    const replay = await undo(renameTx, undoTx);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('x-idempotent-hit')).toBe('true');
    expect(replay.body.title).toBe('Later');
    await recorded(laterTx);
    expect(
      await countOf(sql`select count(*)::int as count from activities where transaction_id = ${undoTx}`),
    ).toBe(1);
  });

  it('lets exactly one of 10 concurrent undos of one transaction (each its own id) win; the others conflict', async () => {
    const { page } = await createPage({ title: 'Plan' });
    const renamed = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Draft' });
    const renameTx = renamed.headers.get('x-transaction-id')!;
    await recorded(renameTx);
    const answers = await Promise.all(Array.from({ length: 10 }, () => undo(renameTx)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of answers.filter((a) => a.status !== 200)) {
      expectError(r, 409, 'TRANSACTION_CONFLICT', [
        'serverVersion',
        'expectedTransaction',
        'actualTransaction',
      ]);
    }
    const [row] = await sql`select transactions->>'update' as version from pages where id = ${page.id}`;
    expect(row!.version).toBe(answers.find((r) => r.status === 200)!.headers.get('x-transaction-id'));
  });

  it.each([
    ['an update', 'PATCH', { title: 'Changed by Ana' }],
    ['a delete', 'DELETE', undefined],
  ])(
    'refuses to undo over %s by someone else: 409 TRANSACTION_CONFLICT with the server version, nothing written',
    async (_label, method, body) => {
      const { page } = await createPage({ title: 'Plan' });
      const path = `${orgPath(alice)}/pages/${page.id}`;
      const renamed = await write('PATCH', path, { title: 'Draft' });
      const renameTx = renamed.headers.get('x-transaction-id')!;
      await recorded(renameTx);
      const newer = await write(method, path, body, {}, ana);
      expect(newer.status).toBe(200);
      const newerTx = newer.headers.get('x-transaction-id')!;
      const [rowBefore] = await sql`select * from pages where id = ${page.id}`;
      const countsBefore = await writeCounts(sql);

      const undoTx = txId('tx-undo');
      const res = await undo(renameTx, undoTx);
      expectError(res, 409, 'TRANSACTION_CONFLICT', [
        'serverVersion',
        'expectedTransaction',
        'actualTransaction',
      ]);
      expect(res.body).toMatchObject({
        expectedTransaction: renameTx,
        actualTransaction: newerTx,
        serverVersion: { id: page.id, title: newer.body.title, transactions: newer.body.transactions },
      });
      const [rowAfter] = await sql`select * from pages where id = ${page.id}`;
      expect(rowAfter).toEqual(rowBefore);
      expect(await writeCounts(sql)).toEqual(countsBefore);
      // the refused undo left its id unclaimed: the client may retry with it
      expect(
        await countOf(
          sql`select count(*)::int as count from applied_transactions where transaction_id = ${undoTx}`,
        ),
      ).toBe(0);
    },
  );

  it('refuses to undo a create after a later update', async () => {
    const { page, tx } = await createPage({ title: 'Plan' });
    await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Later' });
    await recorded(tx);
    expectError(await undo(tx), 409, 'TRANSACTION_CONFLICT', [
      'serverVersion',
      'expectedTransaction',
      'actualTransaction',
    ]);
  });
});

describe('what cannot be undone', () => {
  it("answers another organization's transaction 404 exactly like an unknown one, and changes nothing", async () => {
    const { page, tx } = await createPage({ title: 'SECRET-A' });
    await recorded(tx);
    const [rowBefore] = await sql`select * from pages where id = ${page.id}`;
    const countsBefore = await writeCounts(sql);
    const unknown = await undo(txId('never-applied'), txId('tx-undo'), mallory);
    expectError(unknown, 404, 'NOT_FOUND');
    const crossed = await undo(tx, txId('tx-undo'), mallory);
    expectError(crossed, 404, 'NOT_FOUND');
    expect(crossed.body).toEqual(unknown.body);
    expect(JSON.stringify(crossed.body)).not.toContain('SECRET-A');
    // and through alice's organization, which mallory is not a member of
    const throughA = await write('POST', `${orgPath(alice)}/transactions/${tx}/undo`, undefined, {}, mallory);
    expectError(throughA, 404, 'NOT_FOUND');
    expect((await sql`select * from pages where id = ${page.id}`)[0]).toEqual(rowBefore);
    expect(await writeCounts(sql)).toEqual(countsBefore);
  });

  it('answers 409 PREVIOUS_VALUES_NOT_KEPT for an update recorded without its previous values, and writes nothing', async () => {
    const { page } = await createPage({ title: 'Plan' });
    const renamed = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Draft' });
    const renameTx = renamed.headers.get('x-transaction-id')!;
    await recorded(renameTx);
    // what the worker records for an entity type registered with keepPreviousValues: false
    await sql`update activities set previous_values = null where transaction_id = ${renameTx}`;
    const countsBefore = await writeCounts(sql);
    const res = await undo(renameTx);
    expectError(res, 409, 'PREVIOUS_VALUES_NOT_KEPT', ['missingKeys']);
    expect(res.body.missingKeys).toEqual(['title']);
    expect(await writeCounts(sql)).toEqual(countsBefore);
    const [row] = await sql`select title from pages where id = ${page.id}`;
    expect(row!.title).toBe('Draft');
  });

  it('waits for the CDC worker to record a transaction it applied, and says so when the worker stays behind', async () => {
    await worker.stop();
    try {
      const { page, tx } = await createPage({ title: 'Not recorded yet' });
      const started = Date.now();
      const res = await undo(tx);
      expectError(res, 409, 'TRANSACTION_NOT_RECORDED');
      expect(Date.now() - started).toBeGreaterThanOrEqual(UNDO_RECORD_WAIT_MS - 100);
      expect((await sql`select deleted_at from pages where id = ${page.id}`)[0]!.deleted_at).toBeNull();
      // another organization is not told that the transaction exists: 404 at once
      const crossed = await undo(tx, txId('tx-undo'), mallory);
      expectError(crossed, 404, 'NOT_FOUND');

      // an undo sent while the worker is down completes once it catches up
      const pending = undo(tx);
      await new Promise((r) => setTimeout(r, 300));
      await startWorker();
      const done = await pending;
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      expect(done.body.deletedAt).not.toBeNull();
    } finally {
      if (worker.state() !== 'streaming') await startWorker();
    }
  });
});

describe('hostile input to the undo route', () => {
  it('never answers 5xx, answers every 4xx as error JSON, writes nothing when it refuses and once when it applies', async () => {
    const { page } = await createPage({ title: 'Fuzz target' });
    const renamed = await write('PATCH', `${orgPath(alice)}/pages/${page.id}`, { title: 'Fuzzed' });
    /** The transaction that last changed the page: undoing it applies (it redoes an undo). */
    let latest = renamed.headers.get('x-transaction-id')!;
    const { tx: malloryTx } = await createPage({ title: 'Theirs' }, mallory);
    await Promise.all([recorded(latest), recorded(malloryTx, mallory)]);
    /** Undo transaction ids applied so far, replayed by the fuzzer. */
    const appliedUndos: string[] = [];
    const junk = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.constantFrom('%ZZ', '%00', '..%2F..', '__proto__', 'x'.repeat(300), 'tx;drop table', ''),
    );
    const headerJunk = junk.map((text) => text.replace(/[^\x20-\x7e]/g, ''));
    const transactionRef = fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'latest' as const }) },
      {
        weight: 3,
        arbitrary: fc
          .constantFrom(page.transactions.insert, malloryTx, 'never-applied-tx')
          .map((value) => ({ kind: 'value' as const, value })),
      },
      {
        weight: 2,
        arbitrary: junk.map((value) => ({ kind: 'value' as const, value: encodeURIComponent(value) })),
      },
    );
    const undoHeader = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'fresh' as const }) },
      { weight: 3, arbitrary: fc.nat().map((index) => ({ kind: 'replay' as const, index })) },
      { weight: 1, arbitrary: fc.constant({ kind: 'absent' as const }) },
      { weight: 1, arbitrary: headerJunk.map((value) => ({ kind: 'value' as const, value })) },
    );
    const optionalHeader = fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/), headerJunk), {
      nil: undefined,
    });
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          transaction: transactionRef,
          org: fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(alice.org.slug, alice.org.id) },
            { weight: 1, arbitrary: fc.constantFrom(mallory.org.id, 'no-such-org', '%00') },
          ),
          undoTx: undoHeader,
          clientId: optionalHeader,
          expected: optionalHeader,
          body: fc.option(fc.jsonValue({ maxDepth: 3 }), { nil: undefined }),
          credentials: fc.oneof(
            { weight: 8, arbitrary: fc.constant('bearer') },
            { weight: 1, arbitrary: fc.constantFrom('none', 'junk') },
          ),
        }),
        async (req) => {
          const target = req.transaction.kind === 'latest' ? latest : req.transaction.value;
          let sentUndoTx: string | undefined;
          if (req.undoTx.kind === 'fresh') sentUndoTx = txId('fz-undo');
          if (req.undoTx.kind === 'replay') sentUndoTx = appliedUndos[req.undoTx.index % appliedUndos.length];
          if (req.undoTx.kind === 'value') sentUndoTx = req.undoTx.value;
          const headers: Record<string, string> = {};
          if (req.credentials === 'bearer') headers.authorization = `Bearer ${alice.token}`;
          if (req.credentials === 'junk') headers.authorization = 'Bearer junk';
          if (sentUndoTx !== undefined) headers['x-transaction-id'] = sentUndoTx;
          if (req.clientId !== undefined) headers['x-client-id'] = req.clientId;
          if (req.expected !== undefined) headers['x-expected-transaction-id'] = req.expected;
          if (req.body !== undefined) headers['content-type'] = 'application/json';
          const [rowBefore] = await sql`select * from pages where id = ${page.id}`;
          const countsBefore = await writeCounts(sql);
          const res = await fetch(
            `${stack.api.url}/api/organizations/${req.org}/transactions/${target}/undo`,
            {
              method: 'POST',
              headers,
              body: req.body === undefined ? undefined : JSON.stringify(req.body),
            },
          );
          const text = await res.text();
          const label = `${JSON.stringify({ ...req, target, sentUndoTx })} → ${res.status} ${text.slice(0, 300)}`;
          const hit = res.headers.get('x-idempotent-hit') === 'true';
          expect(res.status, label).toBeLessThan(500);
          const body = JSON.parse(text);
          const outcome = `${res.status} ${res.status >= 400 ? body.code : hit ? 'hit' : 'applied'}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          const [rowAfter] = await sql`select * from pages where id = ${page.id}`;
          if (res.status >= 400) {
            expect(body, label).toMatchObject({
              error: expect.any(String),
              code: expect.stringMatching(/^[A-Z_]+$/),
              message: expect.any(String),
            });
            expect(await writeCounts(sql), label).toEqual(countsBefore);
            expect(rowAfter, label).toEqual(rowBefore);
          } else if (hit) {
            // a replay applies nothing
            expect(appliedUndos, label).toContain(sentUndoTx);
            expect(rowAfter, label).toEqual(rowBefore);
            expect(await writeCounts(sql), label).toEqual(countsBefore);
          } else {
            // only the page's latest transaction can be undone, once, in alice's organization
            expect(target, label).toBe(latest);
            expect([alice.org.slug, alice.org.id], label).toContain(req.org);
            const applied = res.headers.get('x-transaction-id')!;
            expect(rowAfter!.transactions.undo, label).toEqual({ transactionId: applied, undoes: target });
            expect((await writeCounts(sql)).applied, label).toBe(countsBefore.applied + 1);
            appliedUndos.push(applied);
            latest = applied;
            await recorded(applied);
          }
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 150) },
    );
    if (process.env.FUZZ_STATS) console.log([...outcomes].sort());
    expect(outcomes.get('200 applied') ?? 0).toBeGreaterThan(5);
  });
});

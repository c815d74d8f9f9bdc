/**
 * A live client's next request, sent as soon as its last answer arrived, at the offset where the
 * shape's log ended: while no batch of the organization was notified since that read, the
 * request waits at once instead of reading the log again (shape_live_first_reads_total), and
 * a change still reaches it; a change notified in between is read and answered at once, and so
 * is every request after the API's LISTEN was lost and established again (what was notified
 * meanwhile is unknown).
 */
import { NOTIFY_CHANNEL } from '@sync/db/constants';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, liveQueryAfterSnapshot, orgPath, txId, waitForActivity } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 10_000 } });
  sql = connectDb(stack.cluster.url);
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

const shapeUrl = (m: Member) => `${stack.api.url}${orgPath(m)}/shapes/pages`;

async function firstReads(): Promise<{ read: number; skipped: number }> {
  const text = await (await fetch(`${stack.api.url}/api/metrics`)).text();
  const count = (read: string) =>
    Number(new RegExp(`^shape_live_first_reads_total\\{read="${read}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { read: count('read'), skipped: count('skipped') };
}

const snapshotOffset = (m: Member) => liveQueryAfterSnapshot(shapeUrl(m), m.token);

/** A live request at `query`'s offset: its body and the offset to ask for next. */
async function livePoll(m: Member, query: URLSearchParams) {
  const res = await fetch(`${shapeUrl(m)}?${query}`, { headers: { authorization: `Bearer ${m.token}` } });
  const body = await res.text();
  return { status: res.status, body, offset: res.headers.get('electric-offset') ?? '' };
}

async function createPage(m: Member, title: string) {
  const tx = txId('tx-rearm');
  await stack.client.request('POST', `${orgPath(m)}/pages`, {
    token: m.token,
    body: { title },
    headers: { 'x-transaction-id': tx },
  });
  return tx;
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('the next live request after an answer', () => {
  it('waits without reading the log again, and the next change reaches it', async () => {
    const m = await stack.client.newMember();
    const query = await snapshotOffset(m);
    const first = livePoll(m, query);
    await settle();
    await createPage(m, 'first change');
    const answered = await first;
    expect(answered.body).toContain('first change');

    const before = await firstReads();
    query.set('offset', answered.offset);
    const next = livePoll(m, query);
    await settle();
    expect(await firstReads()).toEqual({ read: before.read, skipped: before.skipped + 1 });
    await createPage(m, 'second change');
    const second = await next;
    expect(second.status).toBe(200);
    expect(second.body).toContain('second change');
    expect(second.body).not.toContain('first change');
  });

  it('reads and answers at once when a batch of the organization was notified since', async () => {
    const m = await stack.client.newMember();
    const query = await snapshotOffset(m);
    const first = livePoll(m, query);
    await settle();
    await createPage(m, 'first change');
    const answered = await first;

    // the next change is logged and its batch notified before the client asks again
    let heard = () => {};
    const notified = new Promise<void>((resolve) => {
      heard = resolve;
    });
    const listener = await sql.listen(NOTIFY_CHANNEL, () => heard());
    const tx = await createPage(m, 'change in between');
    await waitForActivity(sql, tx);
    await notified;
    await listener.unlisten();
    await settle(); // the API's LISTEN has it too

    const before = await firstReads();
    query.set('offset', answered.offset);
    const started = performance.now();
    const next = await livePoll(m, query);
    expect(next.body).toContain('change in between');
    expect(await firstReads()).toEqual({ read: before.read + 1, skipped: before.skipped });
    // read, not found by the 2 s recheck
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('reads the log again once the LISTEN was lost and established again', async () => {
    const m = await stack.client.newMember();
    const query = await snapshotOffset(m);
    const first = livePoll(m, query);
    await settle();
    await createPage(m, 'first change');
    const answered = await first;

    const listening = () =>
      sql<
        { pid: number }[]
      >`select pid from pg_stat_activity where query ilike ${`listen "${NOTIFY_CHANNEL}"`}`;
    const [lost] = await listening();
    expect(lost).toBeDefined();
    await sql`select pg_terminate_backend(${lost?.pid ?? 0})`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const pids = (await listening()).map((row) => row.pid);
      if (pids.length > 0 && !pids.includes(lost?.pid ?? 0)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await settle();

    const before = await firstReads();
    query.set('offset', answered.offset);
    const next = livePoll(m, query);
    await settle();
    expect(await firstReads()).toEqual({ read: before.read + 1, skipped: before.skipped });
    await createPage(m, 'after the LISTEN came back');
    expect((await next).body).toContain('after the LISTEN came back');
  });

  it('reads the log when the offset is not where the last read ended', async () => {
    const m = await stack.client.newMember();
    const query = await snapshotOffset(m);
    const snapshotAt = query.get('offset') ?? '';
    const first = livePoll(m, query);
    await settle();
    await createPage(m, 'first change');
    await first;

    // a client that was not answered (or resumes from an older offset) asks at the snapshot's
    const before = await firstReads();
    query.set('offset', snapshotAt);
    const behind = await livePoll(m, query);
    expect(behind.body).toContain('first change');
    expect(await firstReads()).toEqual({ read: before.read + 1, skipped: before.skipped });
  });
});

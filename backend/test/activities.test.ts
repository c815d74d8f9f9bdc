import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { openSse } from '../src/testing/sse.ts';
import { connectDb, orgPath, txId } from './support/contract.ts';

let stack: TestStack;
let alice: Member;
let mallory: Member;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { maxStreamsPerUser: 3 } });
  alice = await stack.client.newMember();
  mallory = await stack.client.newMember();
});
afterAll(async () => {
  await stack?.stop();
});

const base = orgPath;
const get = (path: string, m: Member = alice) => stack.client.request('GET', path, { token: m.token });
const write = (
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
  m: Member = alice,
) => stack.client.request(method, path, { token: m.token, body, headers });

/** Polls until the CDC worker has recorded the transaction. */
async function waitForTransaction(transactionId: string, m: Member = alice, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await get(`${base(m)}/transactions/${transactionId}`, m);
    if (res.status === 200) return res.body;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`transaction ${transactionId} was not recorded in ${timeoutMs} ms`);
}

describe('activity feed', () => {
  it('records create, update and soft delete with transaction id, client id, user and changed keys', async () => {
    const [createTx, updateTx, deleteTx] = [txId('tx-act'), txId('tx-act'), txId('tx-act')];
    const created = await write(
      'POST',
      `${base(alice)}/pages`,
      { title: 'Feed', content: 'a' },
      {
        'x-transaction-id': createTx,
        'x-client-id': 'client_feed',
      },
    );
    const path = `${base(alice)}/pages/${created.body.id}`;
    await write(
      'PATCH',
      path,
      { content: 'b' },
      { 'x-transaction-id': updateTx, 'x-client-id': 'client_feed' },
    );
    await write('DELETE', path, undefined, { 'x-transaction-id': deleteTx, 'x-client-id': 'client_other' });
    await waitForTransaction(deleteTx);

    const res = await get(`${base(alice)}/activities?entityId=${created.body.id}`);
    expect(res.status).toBe(200);
    const items = res.body.items;
    expect(items.map((a: any) => a.type)).toEqual(['page.created', 'page.updated', 'page.deleted']);
    expect(items.map((a: any) => a.transactionId)).toEqual([createTx, updateTx, deleteTx]);
    expect(items.map((a: any) => a.clientId)).toEqual(['client_feed', 'client_feed', 'client_other']);
    expect(items[0]).toMatchObject({
      action: 'create',
      entityType: 'page',
      entityId: created.body.id,
      organizationId: alice.org.id,
      userId: alice.user.id,
    });
    expect(items[0].changedKeys).toEqual(expect.arrayContaining(['title', 'content']));
    expect(items[1].changedKeys).toEqual(['content']);
    expect(items[1].previousValues).toEqual({ content: 'a' });
    expect(items[2].action).toBe('delete');
    expect(items[0].id).toMatch(/^\d+_\d+$/);
    // commit time from the WAL, close to the write
    expect(Math.abs(Date.parse(items[0].createdAt) - Date.parse(created.body.createdAt))).toBeLessThan(5_000);
  });

  it('filters by transaction, client, action and entity type, and pages with after/nextCursor', async () => {
    const client = `client_filter_${Date.now().toString(36)}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await write(
        'POST',
        `${base(alice)}/pages`,
        { title: `f${i}` },
        { 'x-transaction-id': txId('tx-act'), 'x-client-id': client },
      );
      ids.push(res.body.id);
    }
    const lastTx = txId('tx-act');
    await write(
      'PATCH',
      `${base(alice)}/pages/${ids[0]}`,
      { title: 'changed' },
      { 'x-transaction-id': lastTx, 'x-client-id': client },
    );
    await waitForTransaction(lastTx);

    const byClient = await get(`${base(alice)}/activities?clientId=${client}`);
    expect(byClient.body.items).toHaveLength(6);
    const byAction = await get(`${base(alice)}/activities?clientId=${client}&action=update`);
    expect(byAction.body.items.map((a: any) => a.transactionId)).toEqual([lastTx]);
    const byTx = await get(`${base(alice)}/activities?transactionId=${lastTx}`);
    expect(byTx.body.items).toHaveLength(1);
    const byType = await get(`${base(alice)}/activities?clientId=${client}&entityType=attachment`);
    expect(byType.body.items).toHaveLength(0);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `clientId=${client}&limit=2${cursor ? `&after=${cursor}` : ''}`;
      const page = await get(`${base(alice)}/activities?${query}`);
      seen.push(...page.body.items.map((a: any) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(byClient.body.items.map((a: any) => a.id));
  });

  it('orders the feed by the numeric LSN once the WAL passes 10^8 bytes (9 vs 10 digits)', async () => {
    const carol = await stack.client.newMember();
    const sql = connectDb(stack.cluster.url);
    try {
      await sql`
        insert into activities (lsn, position, type, action, entity_type, entity_id, organization_id, changed_keys, row, xid, created_at)
        select lsn, 0, 'page.created', 'create', 'page', 'p_' || lsn, ${carol.org.id}, '{}', '{}', 1, now()
        from unnest(array[100000000, 99999999, 1000000000]::int8[]) as lsn`;
    } finally {
      await sql.end();
    }
    const res = await get(`${base(carol)}/activities`, carol);
    expect(res.body.items.map((a: any) => a.id)).toEqual(['99999999_0', '100000000_0', '1000000000_0']);
    const after = await get(`${base(carol)}/activities?after=99999999_0&limit=1`, carol);
    expect(after.body.items.map((a: any) => a.id)).toEqual(['100000000_0']);
  });

  it('rejects a malformed cursor with VALIDATION_FAILED', async () => {
    const res = await get(`${base(alice)}/activities?after=not-a-cursor`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
  });
});

describe('transaction status', () => {
  it('answers 404 unknown for a transaction never applied, and applied with its activity once recorded', async () => {
    const unknown = await get(`${base(alice)}/transactions/never-applied-tx`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({
      status: 'unknown',
      transactionId: 'never-applied-tx',
      code: 'NOT_FOUND',
    });

    const tx = txId('tx-act');
    await write('POST', `${base(alice)}/pages`, { title: 'status' }, { 'x-transaction-id': tx });
    const applied = await waitForTransaction(tx);
    expect(applied).toMatchObject({
      transactionId: tx,
      status: 'applied',
      activity: { transactionId: tx, type: 'page.created' },
    });
  });

  it('does not confirm a transaction to another organization', async () => {
    const tx = txId('tx-act');
    await write('POST', `${base(alice)}/pages`, { title: 'private' }, { 'x-transaction-id': tx });
    await waitForTransaction(tx);
    const res = await get(`${base(mallory)}/transactions/${tx}`, mallory);
    expect(res.status).toBe(404);
    expect(res.body.status).toBe('unknown');
  });
});

describe('counts', () => {
  it('gives absolute totals of live entities consistent with the activity at offset', async () => {
    const member = await stack.client.newMember();
    const pageIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await write(
        'POST',
        `${base(member)}/pages`,
        { title: `c${i}` },
        { 'x-transaction-id': txId('tx-act') },
        member,
      );
      pageIds.push(res.body.id);
    }
    await write(
      'POST',
      `${base(member)}/attachments`,
      {
        filename: 'a.png',
        contentType: 'image/png',
        size: 1,
        url: 'https://example.com/a.png',
        pageId: pageIds[0],
      },
      { 'x-transaction-id': txId('tx-act') },
      member,
    );
    const lastTx = txId('tx-act');
    await write(
      'DELETE',
      `${base(member)}/pages/${pageIds[1]}`,
      undefined,
      { 'x-transaction-id': lastTx },
      member,
    );
    const recorded = await waitForTransaction(lastTx, member);

    const res = await get(`${base(member)}/counts`, member);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ counts: { page: 2, attachment: 1 }, offset: recorded.activity.id });
  });

  it('answers zeros for an organization without entities', async () => {
    const member = await stack.client.newMember();
    const res = await get(`${base(member)}/counts`, member);
    expect(res.body).toEqual({ counts: { page: 0, attachment: 0 }, offset: null });
  });
});

describe('activity stream (SSE)', () => {
  const streamUrl = (m: Member, query = '') => `${stack.api.url}${base(m)}/activities/stream${query}`;

  it('sends connected and counts, then each new activity with its cursor as the event id', async () => {
    const sse = await openSse(streamUrl(alice), { authorization: `Bearer ${alice.token}` });
    try {
      expect(sse.status).toBe(200);
      await sse.until((e) => e.some((x) => x.event === 'counts'));
      expect(sse.events[0]!.event).toBe('connected');
      const tx = txId('tx-act');
      await write('POST', `${base(alice)}/pages`, { title: 'live' }, { 'x-transaction-id': tx });
      const events = await sse.until((e) =>
        e.some((x) => x.event === 'activity' && x.data.transactionId === tx),
      );
      const activity = events.find((x) => x.event === 'activity' && x.data.transactionId === tx)!;
      expect(activity.id).toBe(activity.data.id);
      await sse.until((e) => e.filter((x) => x.event === 'counts').length >= 2);
    } finally {
      sse.close();
    }
  });

  it('resumes after a dropped connection with Last-Event-ID without missing or repeating an activity', async () => {
    const member = await stack.client.newMember();
    const headers = { authorization: `Bearer ${member.token}` };
    const first = await openSse(streamUrl(member), headers);
    const before = [txId('tx-act'), txId('tx-act')];
    for (const tx of before)
      await write('POST', `${base(member)}/pages`, { title: tx }, { 'x-transaction-id': tx }, member);
    await first.until((e) => e.filter((x) => x.event === 'activity').length >= 2);
    first.close();
    const lastSeen = first.events.filter((x) => x.event === 'activity').at(-1)!.id!;

    const during = [txId('tx-act'), txId('tx-act'), txId('tx-act')];
    for (const tx of during)
      await write('POST', `${base(member)}/pages`, { title: tx }, { 'x-transaction-id': tx }, member);
    await waitForTransaction(during.at(-1)!, member);

    const resumes: { query: string; header: Record<string, string> }[] = [
      { query: '', header: { 'last-event-id': lastSeen } },
      { query: `?after=${lastSeen}`, header: {} },
    ];
    for (const { query, header: resume } of resumes) {
      const second = await openSse(streamUrl(member, query), { ...headers, ...resume });
      await second.until((e) => e.filter((x) => x.event === 'activity').length >= 3);
      await new Promise((r) => setTimeout(r, 200));
      second.close();
      expect(second.events[0]).toMatchObject({ event: 'connected', data: { offset: lastSeen } });
      expect(second.events.filter((x) => x.event === 'activity').map((x) => x.data.transactionId)).toEqual(
        during,
      );
    }
  });

  it('caps the streams one user holds open with 429 RATE_LIMITED, and frees a place when one closes', async () => {
    const member = await stack.client.newMember();
    const headers = { authorization: `Bearer ${member.token}` };
    const open = [];
    for (let i = 0; i < 3; i++) {
      const sse = await openSse(streamUrl(member), headers);
      expect(sse.status).toBe(200);
      open.push(sse);
    }
    const refused = await fetch(streamUrl(member), { headers });
    expect(refused.status).toBe(429);
    expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED' });
    open.pop()!.close();
    const deadline = Date.now() + 5_000;
    let again = await openSse(streamUrl(member), headers);
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      again = await openSse(streamUrl(member), headers);
    }
    expect(again.status).toBe(200);
    for (const sse of [...open, again]) sse.close();
  });

  it("never streams another organization's activities", async () => {
    const sse = await openSse(streamUrl(mallory), { authorization: `Bearer ${mallory.token}` });
    try {
      await sse.until((e) => e.some((x) => x.event === 'counts'));
      const tx = txId('tx-act');
      await write('POST', `${base(alice)}/pages`, { title: 'not for mallory' }, { 'x-transaction-id': tx });
      await waitForTransaction(tx);
      await new Promise((r) => setTimeout(r, 300));
      expect(sse.events.filter((x) => x.event === 'activity')).toHaveLength(0);
      const foreign = await openSse(streamUrl(alice), { authorization: `Bearer ${mallory.token}` });
      expect(foreign.status).toBe(404);
    } finally {
      sse.close();
    }
  });
});

describe('one source of truth (guarantee 6)', () => {
  it('REST list, counts and a replay of the activity feed agree after any sequence of writes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('create' as const),
              title: fc.string({ minLength: 1, maxLength: 20 }),
            }),
            fc.record({
              op: fc.constant('update' as const),
              target: fc.nat(),
              title: fc.string({ minLength: 1, maxLength: 20 }),
            }),
            fc.record({ op: fc.constant('delete' as const), target: fc.nat() }),
          ),
          { minLength: 1, maxLength: 25 },
        ),
        async (ops) => {
          const member = await stack.client.newMember();
          const pages = `${base(member)}/pages`;
          const live: string[] = [];
          let lastTx = '';
          for (const op of ops) {
            const tx = txId('tx-act');
            if (op.op === 'create') {
              const res = await write(
                'POST',
                pages,
                { title: op.title.trim() || 'x' },
                { 'x-transaction-id': tx },
                member,
              );
              if (res.status !== 201) continue;
              live.push(res.body.id);
            } else if (live.length > 0) {
              const id = live[op.target % live.length]!;
              if (op.op === 'update') {
                const res = await write(
                  'PATCH',
                  `${pages}/${id}`,
                  { title: op.title.trim() || 'y' },
                  { 'x-transaction-id': tx },
                  member,
                );
                if (res.status !== 200) continue;
              } else {
                await write('DELETE', `${pages}/${id}`, undefined, { 'x-transaction-id': tx }, member);
                live.splice(live.indexOf(id), 1);
              }
            } else continue;
            lastTx = tx;
          }
          if (!lastTx) return;
          await waitForTransaction(lastTx, member);

          const list = await get(`${pages}?limit=500`, member);
          const counts = await get(`${base(member)}/counts`, member);
          const feed = await get(`${base(member)}/activities?limit=1000&entityType=page`, member);
          const replayed = new Set<string>();
          for (const a of feed.body.items) {
            if (a.action === 'create') replayed.add(a.entityId);
            if (a.action === 'delete') replayed.delete(a.entityId);
          }
          const listed = list.body.items.map((p: any) => p.id).sort();
          expect(listed).toEqual([...live].sort());
          expect([...replayed].sort()).toEqual(listed);
          expect(counts.body.counts.page).toBe(listed.length);
          expect(counts.body.offset).toBe(feed.body.items.at(-1).id);
        },
      ),
      { numRuns: 8 },
    );
  });
});

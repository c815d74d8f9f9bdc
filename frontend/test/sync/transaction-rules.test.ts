/** The pure rules: what an answer means, the backoff, the overlay, and transaction ids. */
import { describe, expect, it } from 'vitest';
import { overlay } from '../../src/lib/sync/overlay.ts';
import { createTransactionId } from '../../src/lib/sync/transaction-id.ts';
import {
  MAX_RETRY_DELAY_MS,
  needsStatusCheck,
  outcomeOf,
  retryDelay,
} from '../../src/lib/sync/transaction-outcome.ts';
import type { OutboxEntry } from '../../src/lib/sync/types.ts';

const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => ({
  response: new Response(null, { status, headers }),
  body,
});

describe('what an answer means', () => {
  it('counts 2xx, also an idempotent replay, as sent and keeps the xid', () => {
    expect(outcomeOf(answer(201, { id: 'p1' }, { 'x-txid': '812' }))).toEqual({
      kind: 'sent',
      serverVersion: { id: 'p1' },
      serverTxid: '812',
    });
    expect(outcomeOf(answer(200, { id: 'p1' }, { 'x-idempotent-hit': 'true' })).kind).toBe('sent');
  });

  it('turns 409 TRANSACTION_CONFLICT and ENTITY_DELETED into a conflict with the server version', () => {
    const body = {
      error: 'conflict',
      code: 'TRANSACTION_CONFLICT',
      message: 'changed',
      serverVersion: { id: 'p1' },
    };
    expect(outcomeOf(answer(409, body))).toMatchObject({ kind: 'conflict', serverVersion: { id: 'p1' } });
    expect(outcomeOf(answer(409, { ...body, code: 'ENTITY_DELETED' })).kind).toBe('conflict');
  });

  it('fails other 4xx for good with the reason, including other 409s', () => {
    expect(outcomeOf(answer(400, { code: 'VALIDATION_FAILED', message: 'title is too long' }))).toEqual({
      kind: 'failed',
      error: { code: 'VALIDATION_FAILED', message: 'title is too long', status: 400 },
    });
    expect(outcomeOf(answer(409, { code: 'ID_TAKEN', message: 'taken' })).kind).toBe('failed');
    expect(outcomeOf(answer(404, { code: 'NOT_FOUND', message: 'gone' })).kind).toBe('failed');
  });

  it('retries 5xx, 401, 408, 429 and no answer at all', () => {
    for (const status of [500, 502, 503, 401, 408, 429])
      expect(outcomeOf(answer(status, null)).kind).toBe('retry');
    expect(outcomeOf({ response: undefined, failure: { code: 'NETWORK', message: 'offline' } }).kind).toBe(
      'retry',
    );
  });

  it('retries an undo of a transaction the server has not recorded yet, rather than failing it', () => {
    const notYet = { code: 'TRANSACTION_NOT_RECORDED', message: 'not in the activity log yet' };
    expect(outcomeOf(answer(409, notYet))).toEqual({
      kind: 'retry',
      error: { ...notYet, status: 409 },
    });
    expect(outcomeOf(answer(409, { code: 'PREVIOUS_VALUES_NOT_KEPT', message: 'no' })).kind).toBe('failed');
  });

  it('checks the status endpoint before resending only when an answer may have been lost', () => {
    expect(needsStatusCheck({ code: 'NETWORK', message: '' })).toBe(true);
    expect(needsStatusCheck({ code: 'TIMEOUT', message: '' })).toBe(true);
    expect(needsStatusCheck({ code: 'HTTP_502', message: '', status: 502 })).toBe(true);
    expect(needsStatusCheck({ code: 'RATE_LIMITED', message: '', status: 429 })).toBe(false);
    expect(needsStatusCheck(null)).toBe(false);
  });
});

describe('backoff', () => {
  it('doubles from 0.5 s, is capped at 30 s, and is jittered between half and all of it', () => {
    expect([1, 2, 3, 4].map((retries) => retryDelay(retries, 1))).toEqual([500, 1_000, 2_000, 4_000]);
    expect(retryDelay(30, 1)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelay(3, 0)).toBe(1_000);
    for (let i = 0; i < 100; i++) {
      const delay = retryDelay(3);
      expect(delay).toBeGreaterThanOrEqual(1_000);
      expect(delay).toBeLessThanOrEqual(2_000);
    }
  });
});

let seq = 0;
const entry = (fields: Partial<OutboxEntry> & Pick<OutboxEntry, 'entityId' | 'action'>): OutboxEntry => ({
  seq: ++seq,
  txId: `tx-${seq}`,
  organization: 'o1',
  entityType: 'page',
  payload: {},
  expectedVersion: null,
  status: 'pending',
  retries: 0,
  nextAttemptAt: 0,
  lastError: null,
  serverVersion: null,
  serverTxid: null,
  undoOf: null,
  replaces: null,
  cascadedFrom: null,
  clientId: 'c1',
  tabId: 't1',
  createdAt: 0,
  sentAt: null,
  settledAt: null,
  ...fields,
});
const row = (id: string, title: string) => ({
  id,
  title,
  deletedAt: null,
  transactions: { insert: `server-${id}`, update: null, delete: null },
});

describe('overlay', () => {
  it('lays unconfirmed changes over server rows in sequence order, with the newest status', () => {
    const rows = new Map([
      ['a', row('a', 'A')],
      ['b', row('b', 'B')],
    ]);
    const items = overlay<ReturnType<typeof row>>(rows, [
      entry({ entityId: 'a', action: 'update', payload: { title: 'A1' }, status: 'sent' }),
      entry({ entityId: 'a', action: 'update', payload: { title: 'A2' } }),
      entry({ entityId: 'b', action: 'delete' }),
      entry({ entityId: 'c', action: 'create', payload: { title: 'C' } }),
    ]);
    expect(items.map((item) => [item.id, item.value.title, item.status])).toEqual([
      ['a', 'A2', 'pending'],
      ['c', 'C', 'pending'],
    ]);
  });

  it('rolls back failed changes but keeps showing their status until dismissed', () => {
    const rows = new Map([['a', row('a', 'A')]]);
    const failed = entry({
      entityId: 'a',
      action: 'update',
      payload: { title: 'too long' },
      status: 'failed',
    });
    const [item] = overlay<ReturnType<typeof row>>(rows, [failed]);
    expect(item).toMatchObject({ value: { title: 'A' }, status: 'failed', txId: failed.txId });
  });

  it('keeps a conflicted change in view (the person decides) and shows confirmed rows as the server has them', () => {
    const rows = new Map([['a', row('a', 'server A')]]);
    const confirmed = entry({
      entityId: 'a',
      action: 'update',
      payload: { title: 'old' },
      status: 'confirmed',
    });
    expect(overlay(rows, [confirmed])[0]).toMatchObject({
      value: { title: 'server A' },
      status: 'confirmed',
    });
    const conflict = entry({
      entityId: 'a',
      action: 'update',
      payload: { title: 'mine' },
      status: 'conflict',
    });
    expect(overlay(rows, [confirmed, conflict])[0]).toMatchObject({
      value: { title: 'mine' },
      status: 'conflict',
    });
  });

  it('keeps unchanged items (and an unchanged list) the same objects, so a view redraws only what changed', () => {
    const rows = new Map([
      ['a', row('a', 'A')],
      ['b', row('b', 'B')],
    ]);
    const first = overlay(rows, []);
    expect(overlay(new Map(rows), [], first)).toBe(first);
    const edit = entry({ entityId: 'b', action: 'update', payload: { title: 'B2' } });
    const edited = overlay(rows, [edit], first);
    expect(edited).not.toBe(first);
    expect(edited[0]).toBe(first[0]);
    expect(edited[1]).toMatchObject({ value: { title: 'B2' }, status: 'pending' });
    expect(overlay(rows, [{ ...edit, status: 'confirmed' }], edited)[1]).toMatchObject({
      value: { title: 'B' },
      status: 'confirmed',
    });
  });

  it('keeps an item whose value is laid over again, or read again, equal, and every item in its place', () => {
    const create = entry({ entityId: 'n', action: 'create', payload: { title: 'New' } });
    const rows = new Map([
      ['b', row('b', 'B')],
      ['a', row('a', 'A')],
    ]);
    const first = overlay(rows, [create]);
    // the same entry as read from the database again (new objects), the rows in another order
    const reread = new Map([
      ['a', row('a', 'A')],
      ['b', row('b', 'B')],
    ]);
    expect(overlay(reread, [{ ...create, payload: { ...create.payload } }], first)).toBe(first);
    // confirmed: the server's row takes the item's place, the others stay where they were
    const confirmed = overlay(
      new Map([...reread, ['n', row('n', 'New')]]),
      [{ ...create, status: 'confirmed' }],
      first,
    );
    expect(confirmed.map((item) => item.id)).toEqual(['b', 'a', 'n']);
    expect(confirmed[0]).toBe(first[0]);
  });

  it('gives an optimistic create the transaction as its version, so later edits chain on it', () => {
    const create = entry({ entityId: 'n', action: 'create', payload: { title: 'New' } });
    expect(overlay(new Map(), [create])[0]?.value.transactions).toEqual({
      insert: create.txId,
      update: null,
      delete: null,
    });
  });
});

describe('transaction ids', () => {
  it('are a base36 timestamp and 12 random characters, within the API pattern', () => {
    const id = createTransactionId(Date.UTC(2026, 0, 1));
    expect(id).toMatch(/^[0-9a-z]+-[A-Za-z0-9_-]{12}$/);
    expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(Number.parseInt(id.split('-')[0] as string, 36)).toBe(Date.UTC(2026, 0, 1));
    expect(new Set(Array.from({ length: 1000 }, () => createTransactionId())).size).toBe(1000);
  });
});

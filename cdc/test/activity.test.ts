/**
 * The change → activity mapping and the count deltas, pure: no database. Inputs look exactly
 * like the messages of pgoutput-decoder.ts, with PostgreSQL's text values.
 */

import { activityId, formatLsn, parseLsn } from '@sync/db/lsn';
import { encodeActivityNotification, parseActivityNotification } from '@sync/db/notification';
import { trackedTables } from '@sync/db/tracked-tables';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  activityFromChange,
  type ChangeContext,
  type ChangeRelation,
  countDeltasOfChange,
  flatStampOf,
  isoFromMicros,
  type RowChange,
} from '../src/activity.ts';
import { columnValueJson, decodeColumnValue, sameColumnValue } from '../src/column-values.ts';

const TEXT = 25;
const TIMESTAMPTZ = 1184;
const JSONB = 3802;
const INT8 = 20;

const pages: ChangeRelation = {
  schema: 'public',
  name: 'pages',
  columns: [
    { name: 'id', typeOid: TEXT },
    { name: 'organization_id', typeOid: TEXT },
    { name: 'created_at', typeOid: TIMESTAMPTZ },
    { name: 'created_by', typeOid: TEXT },
    { name: 'modified_at', typeOid: TIMESTAMPTZ },
    { name: 'modified_by', typeOid: TEXT },
    { name: 'deleted_at', typeOid: TIMESTAMPTZ },
    { name: 'transactions', typeOid: JSONB },
    { name: 'last_client_id', typeOid: TEXT },
    { name: 'title', typeOid: TEXT },
    { name: 'content', typeOid: TEXT },
  ],
};

const attachments: ChangeRelation = {
  schema: 'public',
  name: 'attachments',
  columns: [
    ...pages.columns.slice(0, 9),
    { name: 'page_id', typeOid: TEXT },
    { name: 'filename', typeOid: TEXT },
    { name: 'size', typeOid: INT8 },
  ],
};

/** pgoutput's tuples are null-prototype objects. */
function tuple(values: Record<string, unknown>): Record<string, unknown> {
  return Object.assign(Object.create(null), values);
}

const created = tuple({
  id: 'p1',
  organization_id: 'o1',
  created_at: '2026-01-02 03:04:05.123456+00',
  created_by: 'u1',
  modified_at: null,
  modified_by: null,
  deleted_at: null,
  transactions: '{"delete": null, "insert": "tx-create", "update": null}',
  last_client_id: 'client-a',
  title: 'Hello',
  content: '',
});

const updated = tuple({
  ...created,
  modified_at: '2026-01-02 03:05:00.000001+00',
  modified_by: 'u2',
  transactions: '{"delete": null, "insert": "tx-create", "update": "tx-update"}',
  last_client_id: 'client-b',
  title: 'Hello again',
});

const softDeleted = tuple({
  ...updated,
  modified_by: 'u3',
  deleted_at: '2026-01-02 03:06:00+00',
  transactions: '{"delete": "tx-delete", "insert": "tx-create", "update": "tx-update"}',
});

const context: ChangeContext = {
  commitLsn: 0x1_0000_00a0n,
  position: 3,
  commitTime: 1_767_323_045_123_456n,
  xid: 755,
};

/** The mapping, with `row` and `previous_values` parsed back from the JSON text it writes. */
function mapped(change: RowChange, at: ChangeContext) {
  const activity = activityFromChange(change, at);
  if (!activity) return null;
  const { rowJson, previousValuesJson, ...rest } = activity;
  return {
    ...rest,
    row: JSON.parse(rowJson) as Record<string, unknown>,
    previousValues: previousValuesJson === null ? null : (JSON.parse(previousValuesJson) as unknown),
  };
}

describe('activityFromChange', () => {
  it('maps an insert to a create with the row, the insert transaction id and the commit time', () => {
    const activity = mapped({ tag: 'insert', relation: pages, new: created }, context);
    expect(activity).toEqual({
      lsn: 0x1_0000_00a0n,
      position: 3,
      type: 'page.created',
      action: 'create',
      entityType: 'page',
      entityId: 'p1',
      organizationId: 'o1',
      userId: 'u1',
      transactionId: 'tx-create',
      clientId: 'client-a',
      changedKeys: ['id', 'organization_id', 'title', 'content'],
      row: {
        id: 'p1',
        organization_id: 'o1',
        created_at: '2026-01-02 03:04:05.123456+00',
        created_by: 'u1',
        modified_at: null,
        modified_by: null,
        deleted_at: null,
        transactions: { insert: 'tx-create', update: null, delete: null },
        last_client_id: 'client-a',
        title: 'Hello',
        content: '',
      },
      previousValues: null,
      undoesTransactionId: null,
      xid: 755,
      commitTime: 1_767_323_045_123_456n,
    });
  });

  it('maps an update to the changed columns only, with their previous values and the modifier', () => {
    const activity = mapped({ tag: 'update', relation: pages, old: created, new: updated }, context);
    expect(activity).toMatchObject({
      type: 'page.updated',
      action: 'update',
      userId: 'u2',
      transactionId: 'tx-update',
      clientId: 'client-b',
      changedKeys: ['title'],
      previousValues: { title: 'Hello' },
    });
    expect(activity?.row.title).toBe('Hello again');
  });

  it('maps setting deleted_at to a soft delete carrying transactions.delete', () => {
    const activity = mapped({ tag: 'update', relation: pages, old: updated, new: softDeleted }, context);
    expect(activity).toMatchObject({
      type: 'page.deleted',
      action: 'delete',
      userId: 'u3',
      transactionId: 'tx-delete',
      changedKeys: ['deleted_at'],
      previousValues: { deleted_at: null },
    });
    expect(activity?.row.deleted_at).toBe('2026-01-02 03:06:00+00');
  });

  it('maps clearing deleted_at (an undelete) to an update', () => {
    const activity = mapped({ tag: 'update', relation: pages, old: softDeleted, new: updated }, context);
    expect(activity).toMatchObject({ action: 'update', type: 'page.updated', changedKeys: ['deleted_at'] });
  });

  it('maps a hard delete to a delete whose row is the old row', () => {
    const activity = mapped({ tag: 'delete', relation: pages, old: updated }, context);
    expect(activity).toMatchObject({
      type: 'page.deleted',
      action: 'delete',
      entityId: 'p1',
      userId: 'u2',
      transactionId: null,
      changedKeys: [],
      previousValues: null,
    });
    expect(activity?.row.title).toBe('Hello again');
  });

  it('names the undone transaction on the activity of the undo, and only there', () => {
    const undo = '"undo": {"undoes": "tx-update", "transactionId": "tx-undo"}';
    const undone = tuple({
      ...updated,
      title: 'Hello',
      transactions: `{"delete": null, "insert": "tx-create", "update": "tx-undo", ${undo}}`,
    });
    const activity = mapped({ tag: 'update', relation: pages, old: updated, new: undone }, context);
    expect(activity).toMatchObject({
      type: 'page.updated',
      transactionId: 'tx-undo',
      undoesTransactionId: 'tx-update',
      changedKeys: ['title'],
      previousValues: { title: 'Hello again' },
    });
    // a later write leaves the stale entry in the row: its activity names no undone transaction
    const later = tuple({
      ...undone,
      title: 'Later',
      transactions: `{"delete": null, "insert": "tx-create", "update": "tx-later", ${undo}}`,
    });
    expect(
      mapped({ tag: 'update', relation: pages, old: undone, new: later }, context)?.undoesTransactionId,
    ).toBeNull();
    const deleted = tuple({
      ...undone,
      deleted_at: '2026-01-02 03:07:00+00',
      transactions: `{"delete": "tx-del", "insert": "tx-create", "update": "tx-undo", ${undo}}`,
    });
    expect(
      mapped({ tag: 'update', relation: pages, old: undone, new: deleted }, context)?.undoesTransactionId,
    ).toBeNull();
    // a hard delete's row is the old row: its stamp belongs to an earlier write
    expect(mapped({ tag: 'delete', relation: pages, old: undone }, context)?.undoesTransactionId).toBeNull();
  });

  it('leaves out previous values for an entity type registered without them', () => {
    const registration = trackedTables.find((t) => t.tableName === 'pages')!;
    registration.keepPreviousValues = false;
    try {
      const activity = mapped({ tag: 'update', relation: pages, old: created, new: updated }, context);
      expect(activity).toMatchObject({ changedKeys: ['title'], previousValues: null });
    } finally {
      registration.keepPreviousValues = true;
    }
  });

  it('falls back to created_by when an update has no modifier', () => {
    const old = tuple({ ...created });
    const next = tuple({ ...created, title: 'x' });
    expect(mapped({ tag: 'update', relation: pages, old, new: next }, context)?.userId).toBe('u1');
  });

  it('ignores bookkeeping columns when computing changed keys', () => {
    const next = tuple({
      ...created,
      modified_at: '2026-01-02 04:00:00+00',
      last_client_id: 'c9',
      transactions: '{"delete": null, "insert": "tx-create", "update": "t2"}',
    });
    const activity = mapped({ tag: 'update', relation: pages, old: created, new: next }, context);
    expect(activity?.changedKeys).toEqual([]);
    expect(activity?.previousValues).toBeNull();
  });

  it('keeps values the default pg parsers already produced as JSON values', () => {
    const parsed = tuple({
      ...created,
      created_at: new Date('2026-01-02T03:04:05.123Z'),
      transactions: { insert: 'tx-create', update: null, delete: null },
    });
    const activity = mapped({ tag: 'insert', relation: pages, new: parsed }, context);
    expect(activity?.row.created_at).toBe('2026-01-02T03:04:05.123Z');
    expect(activity?.transactionId).toBe('tx-create');
  });

  it('maps attachments through the same registry entry path', () => {
    const row = tuple({ ...created, id: 'a1', page_id: 'p1', filename: 'f.png', size: '2048' });
    const activity = mapped({ tag: 'insert', relation: attachments, new: row }, context);
    expect(activity).toMatchObject({ type: 'attachment.created', entityType: 'attachment', entityId: 'a1' });
    expect(activity?.row.size).toBe(2048);
  });

  it('returns null for tables that are not tracked', () => {
    const users: ChangeRelation = {
      schema: 'public',
      name: 'users',
      columns: [{ name: 'id', typeOid: TEXT }],
    };
    expect(mapped({ tag: 'insert', relation: users, new: tuple({ id: 'u1' }) }, context)).toBeNull();
    const otherSchema: ChangeRelation = { ...pages, schema: 'audit' };
    expect(mapped({ tag: 'insert', relation: otherSchema, new: created }, context)).toBeNull();
  });

  it('reads an xid the parser saw as negative (above 2^31) as unsigned', () => {
    const activity = mapped({ tag: 'insert', relation: pages, new: created }, { ...context, xid: -2 });
    expect(activity?.xid).toBe(4_294_967_294);
  });

  it('is deterministic: the same change in the same place maps to the same row', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.bigInt({ min: 1n, max: 2n ** 63n }),
        fc.nat(10_000),
        (title, lsn, position) => {
          const change: RowChange = {
            tag: 'update',
            relation: pages,
            old: created,
            new: tuple({ ...updated, title }),
          };
          const at = { ...context, commitLsn: lsn, position };
          const first = mapped(change, at);
          expect(mapped(change, at)).toEqual(first);
          expect(first?.changedKeys).toEqual(title === 'Hello' ? [] : ['title']);
        },
      ),
    );
  });
});

describe('countDeltasOfChange', () => {
  const delta = (change: RowChange) => countDeltasOfChange(change);

  it('counts a created live row +1 and a created deleted row 0', () => {
    expect(delta({ tag: 'insert', relation: pages, new: created })).toEqual([
      { organizationId: 'o1', entityType: 'page', delta: 1 },
    ]);
    expect(delta({ tag: 'insert', relation: pages, new: softDeleted })).toEqual([]);
  });

  it('counts a soft delete −1, an undelete +1 and a plain update 0', () => {
    expect(delta({ tag: 'update', relation: pages, old: updated, new: softDeleted })).toEqual([
      { organizationId: 'o1', entityType: 'page', delta: -1 },
    ]);
    expect(delta({ tag: 'update', relation: pages, old: softDeleted, new: updated })).toEqual([
      { organizationId: 'o1', entityType: 'page', delta: 1 },
    ]);
    expect(delta({ tag: 'update', relation: pages, old: created, new: updated })).toEqual([]);
  });

  it('counts a hard delete of a live row −1 and of a soft-deleted row 0', () => {
    expect(delta({ tag: 'delete', relation: pages, old: updated })).toEqual([
      { organizationId: 'o1', entityType: 'page', delta: -1 },
    ]);
    expect(delta({ tag: 'delete', relation: pages, old: softDeleted })).toEqual([]);
  });

  it('moves a live row between organizations', () => {
    const moved = tuple({ ...updated, organization_id: 'o2' });
    expect(delta({ tag: 'update', relation: pages, old: updated, new: moved })).toEqual([
      { organizationId: 'o1', entityType: 'page', delta: -1 },
      { organizationId: 'o2', entityType: 'page', delta: 1 },
    ]);
  });

  it('counts nothing for untracked tables', () => {
    const users: ChangeRelation = {
      schema: 'public',
      name: 'users',
      columns: [{ name: 'id', typeOid: TEXT }],
    };
    expect(delta({ tag: 'insert', relation: users, new: tuple({ id: 'u1' }) })).toEqual([]);
  });

  it('sums to the number of live rows over any sequence of changes to one row', () => {
    const step = fc.constantFrom('update', 'softDelete', 'undelete', 'hardDelete');
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        let current: Record<string, unknown> | null = created;
        let total = delta({ tag: 'insert', relation: pages, new: created }).reduce((s, d) => s + d.delta, 0);
        for (const kind of steps) {
          if (!current) break;
          let change: RowChange;
          if (kind === 'hardDelete') change = { tag: 'delete', relation: pages, old: current };
          else {
            const deletedAt: unknown =
              kind === 'softDelete'
                ? '2026-01-02 00:00:00+00'
                : kind === 'undelete'
                  ? null
                  : current.deleted_at;
            change = {
              tag: 'update',
              relation: pages,
              old: current,
              new: tuple({ ...current, deleted_at: deletedAt }),
            };
          }
          total += delta(change).reduce((s, d) => s + d.delta, 0);
          current = change.tag === 'delete' ? null : change.new;
        }
        const live = current !== null && current.deleted_at === null ? 1 : 0;
        expect(total).toBe(live);
      }),
    );
  });
});

describe('column values', () => {
  it('decodes pgoutput text by type and keeps timestamps as PostgreSQL text', () => {
    expect(decodeColumnValue(16, 't')).toBe(true);
    expect(decodeColumnValue(16, 'f')).toBe(false);
    expect(decodeColumnValue(23, '42')).toBe(42);
    expect(decodeColumnValue(INT8, '9007199254740993')).toBe('9007199254740993');
    expect(decodeColumnValue(701, '1.5')).toBe(1.5);
    expect(decodeColumnValue(701, 'NaN')).toBe('NaN');
    expect(decodeColumnValue(JSONB, '{"a": [1, "x"]}')).toEqual({ a: [1, 'x'] });
    expect(decodeColumnValue(JSONB, '"just a string"')).toBe('just a string');
    expect(decodeColumnValue(1009, '{a,"b c",NULL}')).toEqual(['a', 'b c', null]);
    expect(decodeColumnValue(1007, '{1,2}')).toEqual([1, 2]);
    expect(decodeColumnValue(TIMESTAMPTZ, '2026-01-02 03:04:05.123456+00')).toBe(
      '2026-01-02 03:04:05.123456+00',
    );
    expect(decodeColumnValue(1700, '12.340')).toBe('12.340');
    expect(decodeColumnValue(TEXT, null)).toBeNull();
    expect(decodeColumnValue(17, Buffer.from([1, 255]))).toBe('\\x01ff');
  });

  it('writes text values as JSON.stringify does, escapes and surrogates included', () => {
    for (const text of [
      'plain',
      'say "hi"',
      'back\\slash',
      'tab\there',
      '\u0000',
      'ünïcode ✓',
      '😀',
      '\ud800',
    ])
      expect(columnValueJson(TEXT, text)).toBe(JSON.stringify(text));
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(columnValueJson(TEXT, text)).toBe(JSON.stringify(text));
      }),
    );
  });

  it('compares raw values exactly', () => {
    expect(sameColumnValue('a', 'a')).toBe(true);
    expect(sameColumnValue(null, undefined)).toBe(true);
    expect(sameColumnValue('a', null)).toBe(false);
    expect(sameColumnValue({ a: 1 }, { a: 1 })).toBe(true);
  });

  it('formats the commit time with microseconds', () => {
    expect(isoFromMicros(0n)).toBe('1970-01-01T00:00:00.000000Z');
    expect(isoFromMicros(1_767_323_045_000_001n)).toBe('2026-01-02T03:04:05.000001Z');
  });

  it('gives the same text as Date with the microseconds appended, also for neighbours in one second', () => {
    const reference = (micros: bigint) =>
      `${new Date(Number(micros / 1000n)).toISOString().slice(0, -1)}${String(micros % 1000n).padStart(3, '0')}Z`;
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 8_000_000_000_000_000n }),
        fc.array(fc.bigInt({ min: -1_000_000n, max: 1_000_000n })),
        (start, steps) => {
          for (const micros of [start, ...steps.map((step) => (start + step < 0n ? 0n : start + step))]) {
            expect(isoFromMicros(micros)).toBe(reference(micros));
          }
        },
      ),
    );
  });
});

describe('the transactions stamp', () => {
  /** jsonb's text output of a flat object: `{"k": v, "k2": v2}`. */
  const jsonbText = (entries: [string, string | null][]) =>
    `{${entries.map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`).join(', ')}}`;

  it('reads what JSON.parse reads, without it for the flat stamps the API writes', () => {
    expect(flatStampOf('{"delete": null, "insert": "tx-1", "update": null}')).toEqual({
      delete: null,
      insert: 'tx-1',
      update: null,
    });
    expect(flatStampOf('{}')).toEqual({});
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.string(), fc.option(fc.string(), { nil: null })), {
          selector: ([key]) => key,
          maxLength: 5,
        }),
        (entries) => {
          const text = jsonbText(entries);
          const fast = flatStampOf(text);
          const escaped = text.includes('\\') || entries.some(([key]) => key === '__proto__');
          if (!escaped) expect(fast).toBeDefined();
          expect(fast ?? JSON.parse(text)).toStrictEqual(JSON.parse(text));
        },
      ),
    );
  });

  it('leaves every other form to JSON.parse', () => {
    for (const text of [
      '{"undo": {"undoes": "tx-1", "transactionId": "tx-2"}, "insert": "tx-2"}',
      '{"insert": 1}',
      '{"insert":"tx-1"}',
      '{"insert": "tx-1",  "update": null}',
      '{"insert": "tx-1"} ',
      '{"insert": "tx-\\"1"}',
      '{"__proto__": null}',
      '["tx-1"]',
      'null',
      '{"insert": "tx-1"',
    ]) {
      expect(flatStampOf(text)).toBeUndefined();
    }
  });
});

describe('LSNs and notifications', () => {
  it('parses padded and unpadded LSNs to the same number and formats them back', () => {
    expect(parseLsn('00000000/0194B450')).toBe(parseLsn('0/194B450'));
    expect(parseLsn('1/0')).toBe(2n ** 32n);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (lsn) => {
        expect(parseLsn(formatLsn(lsn))).toBe(lsn);
      }),
    );
    expect(() => parseLsn('nonsense')).toThrow();
  });

  it('builds activity ids from the commit LSN and position in decimal', () => {
    expect(activityId({ lsn: 24_860_416n, position: 1 })).toBe('24860416_1');
  });

  it('keeps NOTIFY payloads under PostgreSQL’s limit by dropping the organization list', () => {
    const few = encodeActivityNotification({ id: '1_0', organizationIds: ['o1'] });
    expect(parseActivityNotification(few)).toEqual({ id: '1_0', organizationIds: ['o1'] });
    const many = encodeActivityNotification({
      id: '1_0',
      organizationIds: Array.from({ length: 2_000 }, (_, i) => `organization-${i}`),
    });
    expect(Buffer.byteLength(many)).toBeLessThan(8_000);
    expect(parseActivityNotification(many)).toEqual({ id: '1_0', organizationIds: null });
    expect(parseActivityNotification('not json')).toBeNull();
  });
});

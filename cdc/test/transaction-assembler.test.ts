/**
 * Transaction assembly and batching, pure: pgoutput messages (as pgoutput-decoder.ts decodes
 * them) in, parts out; which parts a batch writes after a crash. No database.
 */
import { describe, expect, it } from 'vitest';
import { TRUNCATE_POSITION_SPAN } from '../src/activity.ts';
import { ReplicationProtocolError, WrittenPositionConflictError } from '../src/errors.ts';
import type { DecodedRelation, PgoutputMessage, RelationColumn } from '../src/pgoutput-decoder.ts';
import { batchOfParts } from '../src/replication-stream.ts';
import {
  TransactionAssembler,
  type TransactionPart,
  type WrittenPosition,
} from '../src/transaction-assembler.ts';

const column = (name: string, typeOid: number): RelationColumn => ({ name, flags: 0, typeOid });

const pages: DecodedRelation = {
  tag: 'relation',
  relationOid: 1,
  schema: 'public',
  name: 'pages',
  replicaIdentity: 'full',
  keyColumns: ['id'],
  columns: [
    column('id', 25),
    column('organization_id', 25),
    column('created_by', 25),
    column('deleted_at', 1184),
    column('transactions', 3802),
    column('last_client_id', 25),
    column('title', 25),
  ],
};

const COMMIT_LSN = 0x1_0000_0000n + 0x2000n;

const begin = (lsn = COMMIT_LSN): PgoutputMessage => ({
  tag: 'begin',
  commitLsn: lsn,
  commitTime: 1_700_000_000_000_000n,
  xid: 42,
});
const commit = (lsn = COMMIT_LSN): PgoutputMessage => ({
  tag: 'commit',
  commitLsn: lsn,
  endLsn: lsn + 1n,
  commitTime: 1_700_000_000_000_000n,
});
const insert = (i: number, org = 'org_a'): PgoutputMessage => ({
  tag: 'insert',
  relation: pages,
  new: {
    id: `p${i}`,
    organization_id: org,
    created_by: 'u1',
    deleted_at: null,
    transactions: `{"insert": "tx_${i}", "update": null, "delete": null}`,
    last_client_id: 'c1',
    title: `page ${i}`,
  },
});

function assemble(messages: PgoutputMessage[], partSize: number, written: WrittenPosition | null = null) {
  const parts: TransactionPart[] = [];
  const assembler = new TransactionAssembler(partSize, (part) => parts.push(part));
  assembler.setWritten(written);
  for (const message of [pages, ...messages]) assembler.receive(message);
  return parts;
}

const transaction = (changes: number, lsn = COMMIT_LSN): PgoutputMessage[] => [
  begin(lsn),
  ...Array.from({ length: changes }, (_, i) => insert(i)),
  commit(lsn),
];

/** The (commit LSN, position) key of each binary COPY row, its first two fields. */
function keysOf(...chunks: Buffer[]): { lsn: bigint; position: number }[] {
  const rows = Buffer.concat(chunks);
  const keys: { lsn: bigint; position: number }[] = [];
  let at = 0;
  while (at < rows.length) {
    const fields = rows.readInt16BE(at);
    at += 2;
    keys.push({ lsn: rows.readBigInt64BE(at + 4), position: rows.readInt32BE(at + 16) });
    for (let i = 0; i < fields; i++) at += 4 + Math.max(0, rows.readInt32BE(at));
  }
  return keys;
}

describe('TransactionAssembler', () => {
  it('cuts a large transaction into parts of partSize before its commit, keyed by commit LSN and position', () => {
    const parts = assemble(transaction(25), 10);
    expect(parts.map((p) => [p.from, p.to, p.final, p.activityCount])).toEqual([
      [0, 10, false, 10],
      [10, 20, false, 10],
      [20, 25, true, 5],
    ]);
    const activities = keysOf(...parts.map((p) => p.copyRows));
    expect(activities.map((a) => a.position)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(new Set(activities.map((a) => a.lsn))).toEqual(new Set([COMMIT_LSN]));
    expect(parts.flatMap((p) => p.countChanges)).toHaveLength(25);
  });

  it('hands a part out as soon as it is full, without waiting for the commit', () => {
    const parts = assemble([begin(), ...Array.from({ length: 10 }, (_, i) => insert(i))], 10);
    expect(parts.map((p) => [p.from, p.to, p.final])).toEqual([[0, 10, false]]);
  });

  it('does not map a transaction that is written, and resumes a half-written one at open_position', () => {
    const done = assemble(transaction(5), 10, { lastLsn: COMMIT_LSN, open: null });
    expect(done.map((p) => [p.from, p.to, p.final, p.activityCount])).toEqual([[0, 5, true, 0]]);

    const resumed = assemble(transaction(25), 10, {
      lastLsn: COMMIT_LSN - 100n,
      open: { lsn: COMMIT_LSN, position: 10 },
    });
    expect(resumed.map((p) => [p.from, p.to, p.final])).toEqual([
      [10, 20, false],
      [20, 25, true],
    ]);
    expect(keysOf(resumed[0]?.copyRows ?? Buffer.alloc(0))[0]?.position).toBe(10);
  });

  it('reserves a block of positions per truncated table, so the keys after it do not depend on the database', () => {
    const parts = assemble(
      [
        begin(),
        insert(0),
        { tag: 'truncate', cascade: false, restartIdentity: false, relations: [pages] },
        insert(1),
        commit(),
      ],
      100,
    );
    const [part] = parts;
    expect(keysOf(part?.copyRows ?? Buffer.alloc(0)).map((a) => a.position)).toEqual([
      0,
      1 + TRUNCATE_POSITION_SPAN,
    ]);
    expect(part?.countChanges.map((c) => ('position' in c ? `truncate@${c.position}` : c.delta))).toEqual([
      1,
      'truncate@1',
      1,
    ]);
  });

  it('rejects a message sequence pgoutput never sends', () => {
    expect(() => assemble([begin(), begin()], 10)).toThrow(ReplicationProtocolError);
    expect(() => assemble([commit()], 10)).toThrow(ReplicationProtocolError);
    expect(() => assemble([begin(), commit(COMMIT_LSN + 8n)], 10)).toThrow(ReplicationProtocolError);
  });
});

describe('batchOfParts', () => {
  const parts = assemble([...transaction(25), ...transaction(3, COMMIT_LSN + 0x100n)], 10);

  it('writes every part from scratch, ending with the last whole commit', () => {
    const batch = batchOfParts(parts, { lastLsn: 0n, open: null });
    expect(batch?.activityCount).toBe(28);
    expect(keysOf(...(batch?.copyRows ?? []))).toHaveLength(28);
    // the parts were cut from one buffer: the batch hands COPY one chunk
    expect(batch?.copyRows).toHaveLength(1);
    expect(batch?.lastActivity).toEqual({ lsn: COMMIT_LSN + 0x100n, position: 2 });
    expect(batch?.organizationIds).toEqual(['org_a']);
    expect(batch?.from).toEqual({ commitLsn: COMMIT_LSN, position: 0 });
    expect(batch?.to).toEqual({ lastLsn: COMMIT_LSN + 0x100n, open: null });
  });

  it('ends a batch that stops inside a transaction at its open position', () => {
    const batch = batchOfParts(parts.slice(0, 2), { lastLsn: 0n, open: null });
    expect(batch?.to).toEqual({ lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 20 } });
  });

  it('leaves out the parts a previous connection wrote, and starts at the written position', () => {
    const batch = batchOfParts(parts, { lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 20 } });
    expect(batch?.from).toEqual({ commitLsn: COMMIT_LSN, position: 20 });
    expect(keysOf(...(batch?.copyRows ?? [])).map((a) => a.position)).toEqual([20, 21, 22, 23, 24, 0, 1, 2]);
    expect(batchOfParts(parts, { lastLsn: COMMIT_LSN + 0x100n, open: null })).toBeNull();
  });

  it('refuses parts that straddle or skip the written position', () => {
    expect(() => batchOfParts(parts, { lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 15 } })).toThrow(
      WrittenPositionConflictError,
    );
    expect(() => batchOfParts(parts.slice(1), { lastLsn: 0n, open: null })).toThrow(
      WrittenPositionConflictError,
    );
  });
  it('closes a transaction whose last part is empty once its earlier parts were written alone', () => {
    // 20 changes in parts of 10: the commit comes after the 20th change was cut into a full
    // part, so the final part is empty; when that full part's batch is already written, the
    // empty part alone must still close the transaction in cdc_state
    const exact = assemble(transaction(20), 10);
    expect(exact.map((p) => [p.from, p.to, p.final, p.activityCount])).toEqual([
      [0, 10, false, 10],
      [10, 20, false, 10],
      [20, 20, true, 0],
    ]);
    const closing = batchOfParts(exact.slice(2), { lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 20 } });
    expect(closing?.from).toEqual({ commitLsn: COMMIT_LSN, position: 20 });
    expect(closing?.to).toEqual({ lastLsn: COMMIT_LSN, open: null });
    expect(closing?.activityCount).toBe(0);
    // the same after a reconnect: the re-sent transaction is all below the written position
    const written = { lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 20 } };
    const resent = assemble(transaction(20), 10, written);
    expect(resent.map((p) => [p.from, p.to, p.final])).toEqual([[20, 20, true]]);
    expect(batchOfParts(resent, written)?.to).toEqual({ lastLsn: COMMIT_LSN, open: null });
    // and once closed, nothing of it is written again
    expect(batchOfParts(exact, { lastLsn: COMMIT_LSN, open: null })).toBeNull();
    expect(
      batchOfParts(exact.slice(0, 2), { lastLsn: 0n, open: { lsn: COMMIT_LSN, position: 20 } }),
    ).toBeNull();
  });
});

describe('CopyRowBuffer', () => {
  it('keeps the lines of a part larger than one slab whole and in order', () => {
    const parts = assemble(transaction(20_000), 30_000);
    expect(parts).toHaveLength(1);
    expect(keysOf(parts[0]?.copyRows ?? Buffer.alloc(0)).map((k) => k.position)).toEqual(
      Array.from({ length: 20_000 }, (_, i) => i),
    );
  });
});

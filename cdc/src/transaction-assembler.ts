/**
 * Source transactions from pgoutput messages, cut into parts of at most `partSize` activities.
 *
 *            (pgoutput-decoder.ts: column values are PostgreSQL's text output)
 *
 *   idle ──begin {commit LSN, commit time, xid}──► open ──insert/update/delete/truncate──► open
 *    ▲                                              │       (partSize activities collected:
 *    │                                              │        part {from, to, final: false})
 *    └──────────────────────── commit ◄─────────────┘──► part {from, to, final: true}
 *                                                         (the rest, possibly no activity)
 *
 * pgoutput protocol 1 sends a transaction only after it committed (PostgreSQL spills a large one
 * to disk meanwhile), and BEGIN already carries the commit LSN. So every key (commit LSN,
 * position) is final from the first change on, and a part can be written before its commit
 * arrives: a transaction of any size needs the memory of a few parts, not of all its changes.
 *
 * `written` is what earlier connections persisted. A change at or below it is counted for its
 * position (positions are the change's index, so the keys stay the same) but not mapped.
 */

import { formatLsn } from '@sync/db/lsn';
import {
  activityFromChange,
  type CountChange,
  type CountDelta,
  countDeltasOfChange,
  isTruncation,
  TRUNCATE_POSITION_SPAN,
  truncationsOf,
} from './activity.ts';
import { CopyRowBuffer } from './activity-copy.ts';
import { ReplicationProtocolError } from './errors.ts';
import type { DecodedRelation, PgoutputMessage } from './pgoutput-decoder.ts';

/** How far the activities of the slot are persisted (cdc_state). */
export interface WrittenPosition {
  /** Highest commit LSN whose transaction is written completely. */
  lastLsn: bigint;
  /** A transaction written in part: its positions below `position` are written. */
  open: { lsn: bigint; position: number } | null;
}

/**
 * A stretch of one source transaction, the unit the sink writes; or a run of whole small
 * transactions that follow one another (`joinPart`), which a batch writes as one.
 */
export interface TransactionPart {
  /** Commit LSN of its first source transaction. */
  firstCommitLsn: bigint;
  /** Commit LSN of its last source transaction (the only one, but for a run). */
  commitLsn: bigint;
  /** Of its last source transaction: microseconds since 1970, as the parser gives it. */
  commitTime: bigint;
  /** The positions [from, to): `from` in its first source transaction, `to` in its last. */
  from: number;
  to: number;
  /** Its last transaction's last part: once it is written its commit LSN may be acknowledged. */
  final: boolean;
  /** Its activities as binary COPY rows (activity-copy.ts). */
  copyRows: Buffer;
  activityCount: number;
  /** Key of its last activity (null: none). */
  lastActivity: { lsn: bigint; position: number } | null;
  /** The organizations of its activities (repeats possible). */
  organizationIds: string[];
  /** Count deltas and truncations, in transaction order. */
  countChanges: CountChange[];
  /** performance.now() when the part (its first transaction, for a run) was cut. */
  readyAt: number;
}

/** A run stops growing at this many organizations or count changes (joining scans them). */
const RUN_WIDTH = 64;

/**
 * Append `next` to `run` when both are whole source transactions with nothing but count
 * deltas, their rows adjacent in one slab, and the two fit in `maxActivities`; returns whether
 * it did. A buffered small transaction is then a few bytes of a run instead of a part object,
 * its Buffer view and arrays, which the garbage collector would copy while they wait for a
 * batch. The run is written and acknowledged as its transactions would have been one by one
 * (one batch takes whole parts), and it never straddles a written position: only parts that
 * were never handed to the sink are joined.
 */
export function joinPart(run: TransactionPart, next: TransactionPart, maxActivities: number): boolean {
  const rows = run.copyRows;
  if (
    !run.final ||
    !next.final ||
    run.from !== 0 ||
    next.from !== 0 ||
    run.activityCount + next.activityCount > maxActivities ||
    rows.buffer !== next.copyRows.buffer ||
    rows.byteOffset + rows.length !== next.copyRows.byteOffset ||
    run.organizationIds.length + next.organizationIds.length > RUN_WIDTH ||
    run.countChanges.length + next.countChanges.length > RUN_WIDTH ||
    run.countChanges.some(isTruncation) ||
    next.countChanges.some(isTruncation)
  ) {
    return false;
  }
  run.commitLsn = next.commitLsn;
  run.commitTime = next.commitTime;
  run.to = next.to;
  run.copyRows = Buffer.from(rows.buffer, rows.byteOffset, rows.length + next.copyRows.length);
  run.activityCount += next.activityCount;
  run.lastActivity = next.lastActivity ?? run.lastActivity;
  for (const id of next.organizationIds) {
    if (!run.organizationIds.includes(id)) run.organizationIds.push(id);
  }
  for (const change of next.countChanges) {
    if (isTruncation(change)) continue;
    const same = run.countChanges.find(
      (c): c is CountDelta =>
        !isTruncation(c) && c.organizationId === change.organizationId && c.entityType === change.entityType,
    );
    if (same) same.delta += change.delta;
    else run.countChanges.push(change);
  }
  return true;
}

interface OpenTransaction {
  commitLsn: bigint;
  commitTime: bigint;
  xid: number;
  nextPosition: number;
  /** Positions below this were written by an earlier connection. */
  skipBelow: number;
  partFrom: number;
  /** Activities of the current part, their rows in the assembler's CopyRowBuffer. */
  activityCount: number;
  lastActivityPosition: number | null;
  organizationIds: string[];
  countChanges: CountChange[];
}

type AssemblerPhase = { name: 'idle' } | { name: 'open'; tx: OpenTransaction };

export class TransactionAssembler {
  private phase: AssemblerPhase = { name: 'idle' };
  private written: WrittenPosition | null = null;
  private readonly copyRows = new CopyRowBuffer();

  constructor(
    private readonly partSize: number,
    private readonly onPart: (part: TransactionPart) => void,
  ) {}

  /** Skip what is persisted from the next transaction on (null: unknown, keep everything). */
  setWritten(written: WrittenPosition | null): void {
    this.written = written;
  }

  /** Activities collected for the open transaction and not yet handed out as a part. */
  pendingActivities(): number {
    return this.phase.name === 'open' ? this.phase.tx.activityCount : 0;
  }

  isOpen(): boolean {
    return this.phase.name === 'open';
  }

  /** Forget an incomplete transaction (the connection ends; it is re-sent from its begin). */
  reset(): void {
    this.phase = { name: 'idle' };
    this.copyRows.discard();
  }

  receive(message: PgoutputMessage): void {
    switch (message.tag) {
      case 'begin':
        this.begin(message);
        return;
      case 'insert':
      case 'update':
      case 'delete':
        this.change(message);
        return;
      case 'truncate':
        this.truncate(message.relations);
        return;
      case 'commit':
        this.commit(message);
        return;
      default:
        return;
    }
  }

  private begin(message: Extract<PgoutputMessage, { tag: 'begin' }>): void {
    if (this.phase.name === 'open') throw new ReplicationProtocolError('begin inside an open transaction');
    const { commitLsn } = message;
    if (commitLsn === 0n) throw new ReplicationProtocolError('begin message without a commit LSN');
    const written = this.written;
    const skipBelow =
      written === null
        ? 0
        : commitLsn <= written.lastLsn
          ? Number.POSITIVE_INFINITY
          : written.open?.lsn === commitLsn
            ? written.open.position
            : 0;
    this.phase = {
      name: 'open',
      tx: {
        commitLsn,
        commitTime: message.commitTime,
        xid: message.xid,
        nextPosition: 0,
        skipBelow,
        partFrom: Number.isFinite(skipBelow) ? skipBelow : 0,
        activityCount: 0,
        lastActivityPosition: null,
        organizationIds: [],
        countChanges: [],
      },
    };
  }

  private openTransaction(what: string): OpenTransaction {
    if (this.phase.name !== 'open') throw new ReplicationProtocolError(`${what} outside a transaction`);
    return this.phase.tx;
  }

  private change(change: Extract<PgoutputMessage, { tag: 'insert' | 'update' | 'delete' }>): void {
    const tx = this.openTransaction(change.tag);
    const position = tx.nextPosition++;
    if (position < tx.skipBelow) return;
    const activity = activityFromChange(change, {
      commitLsn: tx.commitLsn,
      position,
      commitTime: tx.commitTime,
      xid: tx.xid,
    });
    if (!activity) return;
    this.copyRows.append(activity, tx.commitTime);
    tx.activityCount++;
    tx.lastActivityPosition = position;
    tx.organizationIds.push(activity.organizationId);
    for (const delta of countDeltasOfChange(change)) tx.countChanges.push(delta);
    if (tx.activityCount >= this.partSize) this.cut(tx, false);
  }

  private truncate(relations: readonly DecodedRelation[]): void {
    const tx = this.openTransaction('truncate');
    const position = tx.nextPosition;
    const truncations = truncationsOf(relations, {
      commitLsn: tx.commitLsn,
      position,
      commitTime: tx.commitTime,
      xid: tx.xid,
    });
    tx.nextPosition += Math.max(1, truncations.length * TRUNCATE_POSITION_SPAN);
    if (position < tx.skipBelow) return;
    for (const truncation of truncations) tx.countChanges.push(truncation);
  }

  private commit(message: Extract<PgoutputMessage, { tag: 'commit' }>): void {
    const tx = this.openTransaction('commit');
    if (message.commitLsn !== tx.commitLsn) {
      throw new ReplicationProtocolError(
        `commit LSN ${formatLsn(message.commitLsn)} differs from its begin's ${formatLsn(tx.commitLsn)}`,
      );
    }
    this.phase = { name: 'idle' };
    this.cut(tx, true);
  }

  private cut(tx: OpenTransaction, final: boolean): void {
    const to = Math.max(tx.nextPosition, tx.partFrom);
    const part: TransactionPart = {
      firstCommitLsn: tx.commitLsn,
      commitLsn: tx.commitLsn,
      commitTime: tx.commitTime,
      from: tx.partFrom,
      to,
      final,
      copyRows: this.copyRows.take(),
      activityCount: tx.activityCount,
      lastActivity:
        tx.lastActivityPosition === null ? null : { lsn: tx.commitLsn, position: tx.lastActivityPosition },
      organizationIds: tx.organizationIds,
      countChanges: tx.countChanges,
      readyAt: performance.now(),
    };
    tx.partFrom = to;
    tx.activityCount = 0;
    tx.lastActivityPosition = null;
    tx.organizationIds = [];
    tx.countChanges = [];
    this.onPart(part);
  }
}

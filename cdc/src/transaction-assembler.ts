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
  countDeltasOfChange,
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

/** A stretch of one source transaction, the unit the sink writes. */
export interface TransactionPart {
  commitLsn: bigint;
  /** Microseconds since 1970, as the parser gives it. */
  commitTime: bigint;
  xid: number;
  /** The positions [from, to) of the transaction this part covers. */
  from: number;
  to: number;
  /** The transaction's last part: once it is written the commit LSN may be acknowledged. */
  final: boolean;
  /** Its activities as binary COPY rows (activity-copy.ts). */
  copyRows: Buffer;
  activityCount: number;
  /** Position of its last activity (null: none). */
  lastActivityPosition: number | null;
  /** The organization of each activity, in order (repeats included). */
  organizationIds: string[];
  /** Count deltas and truncations, in transaction order. */
  countChanges: CountChange[];
  /** performance.now() when the part was cut. */
  readyAt: number;
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

/** Between transactions (one object for all: a catch-up passes here once per transaction). */
const IDLE: AssemblerPhase = { name: 'idle' };

export class TransactionAssembler {
  private phase: AssemblerPhase = IDLE;
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
    this.phase = IDLE;
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
    this.copyRows.append(activity);
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
    this.phase = IDLE;
    this.cut(tx, true);
  }

  private cut(tx: OpenTransaction, final: boolean): void {
    const to = Math.max(tx.nextPosition, tx.partFrom);
    const part: TransactionPart = {
      commitLsn: tx.commitLsn,
      commitTime: tx.commitTime,
      xid: tx.xid,
      from: tx.partFrom,
      to,
      final,
      copyRows: this.copyRows.take(),
      activityCount: tx.activityCount,
      lastActivityPosition: tx.lastActivityPosition,
      organizationIds: tx.organizationIds,
      countChanges: tx.countChanges,
      readyAt: performance.now(),
    };
    if (!final) {
      // the transaction goes on (a committed one is dropped: nothing to reset)
      tx.partFrom = to;
      tx.activityCount = 0;
      tx.lastActivityPosition = null;
      tx.organizationIds = [];
      tx.countChanges = [];
    }
    this.onPart(part);
  }
}

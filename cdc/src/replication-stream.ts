/**
 * One replication connection (replication-connection.ts), from START_REPLICATION to its end. The
 * worker makes a NEW one on every (re)connect, which resumes at the slot's confirmed position:
 * whatever was received and never acknowledged is sent again.
 *
 *   fencing ── cdc_state read: what is written ──► streaming ──── stop() ───► draining ──► closed
 *      ▲                                            │     ▲                  (write and ack the
 *      │                                            │     │                   ready parts)
 *      └──── backoff over ─── retrying ◄── a write ─┘     └─ (any phase) connection lost, server
 *             (socket paused, acks held,    fails            gone, protocol error ──► closed
 *              failed parts requeued)
 *
 *   receiving, in every phase but draining/closed (transaction-assembler.ts):
 *     messages ──► parts of ≤ batchSize activities (keyed by commit LSN + position) ──► ready
 *   streaming: nothing in flight (after the burst of messages at hand), ready ≥ batchSize
 *     activities, or the oldest ready part ≥ flushIntervalMs old
 *     ──► batch ──► activity-sink.ts: one DB transaction (asynchronous commit)
 *     ──► flush-gate.ts: its WAL flushed ──► acknowledge its last whole commit
 *   up to `pipelineDepth` batches in flight: the next COPYs while the previous commits; they
 *     commit (and are acknowledged) strictly in order
 *   ready ≥ maxBufferedChanges, or not streaming ──► socket paused (resumed below half)
 *   keepalive while idle (nothing open, ready or in flight) ──► acknowledge the keepalive LSN
 *
 * A transaction larger than a batch is written in parts as it arrives: only its commit is ever
 * acknowledged, so a crash re-delivers it whole, and the parts already written (cdc_state's
 * open_lsn/open_position) are skipped. Memory stays at a few batches, whatever the size.
 *
 * Acknowledged positions: the status update names the first position not yet persisted. After a
 * commit we confirm `commitLsn + 1` (that transaction is done, the next one's commit lies
 * beyond); after an idle keepalive exactly its LSN (a commit record may start right there).
 */

import { PUBLICATION_NAME } from '@sync/db/constants';
import { formatLsn } from '@sync/db/lsn';
import { errorCode, isDatabaseUnavailable, isSqlState } from '@sync/db/postgres-errors';
import { sleep, withTimeout } from '@sync/db/timers';
import type { Logger } from 'pino';
import type postgres from 'postgres';
import { isoFromMicros } from './activity.ts';
import { contiguousRuns } from './activity-copy.ts';
import { type ActivityBatch, readWrittenPosition, writeActivityBatch } from './activity-sink.ts';
import {
  asError,
  CdcError,
  ChangeMappingError,
  EarlierBatchFailedError,
  ReplicationSilenceError,
  SinkConnectionError,
  StreamEndedError,
  WrittenPositionConflictError,
} from './errors.ts';
import { FlushGate } from './flush-gate.ts';
import type { PgoutputMessage } from './pgoutput-decoder.ts';
import { ReplicationConnection } from './replication-connection.ts';
import { TransactionAssembler, type TransactionPart, type WrittenPosition } from './transaction-assembler.ts';

export interface ReplicationStreamOptions {
  databaseUrl: string;
  slotName: string;
  /** Pool the batches are written with (at least `pipelineDepth` + 1 connections). */
  sql: postgres.Sql;
  logger: Logger;
  /** The slot's confirmed_flush_lsn when this connection starts. */
  confirmedLsn: bigint;
  /** Activities per batch, and per part of a large source transaction. */
  batchSize: number;
  flushIntervalMs: number;
  /** While a committed batch waits for its WAL flush, how often to ask how far WAL is flushed. */
  flushProbeIntervalMs: number;
  maxBufferedChanges: number;
  pipelineDepth: number;
  retryInitialMs: number;
  retryMaxMs: number;
  statusIntervalMs: number;
  silenceTimeoutMs: number;
  onStreaming?: () => void;
  onBatch?: (batch: BatchReport) => void;
}

export interface BatchReport {
  /** Activities written (replayed parts that were already written are not counted). */
  activities: number;
  /** Parts of source transactions in the batch (a small transaction is one part). */
  parts: number;
  lastCommitLsn: bigint;
  writeMs: number;
}

interface InFlightBatch {
  parts: TransactionPart[];
  batch: ActivityBatch | null;
  /** The last whole transaction of the batch: acknowledged once the batch's commit is flushed. */
  acknowledgeLsn: bigint | null;
  started: number;
  /** Resolves true once committed, false if the write failed. */
  committed: Promise<boolean>;
}

type StreamPhase =
  /** Reading cdc_state; nothing is written until it is known. */
  | { name: 'fencing' }
  /** `written`: the position after the last batch handed to the sink. */
  | { name: 'streaming'; written: WrittenPosition }
  | { name: 'retrying'; timer: NodeJS.Timeout }
  | { name: 'draining'; written: WrittenPosition; drained: () => void }
  | { name: 'closed'; reason: Error | null };

export class ReplicationStream {
  private readonly options: ReplicationStreamOptions;
  private readonly connection: ReplicationConnection;
  private readonly logger: Logger;
  private readonly assembler: TransactionAssembler;
  private readonly flushGate: FlushGate;

  private phase: StreamPhase = { name: 'fencing' };
  private ready: TransactionPart[] = [];
  private readyActivities = 0;
  private inFlight: InFlightBatch[] = [];
  private failed: InFlightBatch[] = [];
  private fenceRead: Promise<void> = Promise.resolve();
  private retryMs: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushDueAt = 0;
  private statusTimer: NodeJS.Timeout | null = null;
  /** Position the server has been told is flushed (the slot's confirmed_flush_lsn). */
  private confirmed: bigint;
  private lastMessageAt = Date.now();
  /** Mirrors the replication socket: paused for backpressure, retries and draining. */
  private socketPaused = false;
  private resolveEnded: (reason: Error | null) => void = () => {};
  private readonly ended: Promise<Error | null>;

  constructor(options: ReplicationStreamOptions) {
    this.options = options;
    this.logger = options.logger;
    this.confirmed = options.confirmedLsn;
    this.retryMs = options.retryInitialMs;
    this.assembler = new TransactionAssembler(options.batchSize, (part) => this.onPart(part));
    this.flushGate = new FlushGate(
      options.sql,
      options.flushProbeIntervalMs,
      (lsn) => {
        this.confirm(lsn + 1n);
        this.afterBatch();
      },
      (error) => this.onFlushProbeFailed(error),
    );
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.connection = new ReplicationConnection(
      {
        connectionString: options.databaseUrl,
        application_name: 'sync-cdc',
        // Timestamps in `row` are PostgreSQL's text output: make it the same on every server.
        options: '-c TimeZone=UTC -c DateStyle=ISO',
        keepAlive: true,
      },
      {
        onStart: () => {
          this.statusTimer = setInterval(() => this.sendStatus(), this.options.statusIntervalMs);
          this.options.onStreaming?.();
        },
        onMessage: (message) => this.onMessage(message),
        onKeepalive: (walEnd, replyRequested) => this.onKeepalive(walEnd, replyRequested),
        onError: (error) => this.end(error),
      },
    );
  }

  /** Stream until the connection ends; resolves with the reason (null after `stop()`). */
  async run(): Promise<Error | null> {
    // Knowing what is written before the first message lets replays be skipped as they arrive
    // (a re-delivered transaction of millions of changes is never mapped again).
    try {
      const written = await readWrittenPosition(this.options.sql, this.options.slotName);
      this.assembler.setWritten(written);
      this.phase = { name: 'streaming', written };
    } catch (error) {
      return asError(error);
    }
    this.connection.stream(this.options.slotName, PUBLICATION_NAME).then(
      () => this.end(this.phase.name === 'draining' ? null : new StreamEndedError()),
      (error: unknown) => this.end(asError(error)),
    );
    const reason = await this.ended;
    // Writes already sent may still commit (harmless: the next connection re-reads cdc_state).
    await Promise.all([...this.inFlight.map((b) => b.committed), this.fenceRead]);
    await withTimeout(this.connection.close(), 2_000).catch(() => {});
    return reason;
  }

  /** Graceful end: drop the open transaction's unfinished part, write and acknowledge the rest. */
  async stop(timeoutMs = 5_000): Promise<void> {
    const phase = this.phase;
    if (phase.name === 'closed' || phase.name === 'draining') return this.ended.then(() => {});
    this.assembler.reset();
    if (phase.name === 'streaming' && !this.isDrained()) {
      const drained = new Promise<void>((resolve) => {
        this.phase = { name: 'draining', written: phase.written, drained: resolve };
      });
      this.updateFlow();
      this.scheduleFlush();
      await Promise.race([drained, sleep(timeoutMs)]);
    }
    this.end(null);
    await this.ended;
  }

  private end(reason: Error | null): void {
    const phase = this.phase;
    if (phase.name === 'closed') return;
    if (phase.name === 'retrying') clearTimeout(phase.timer);
    this.phase = { name: 'closed', reason };
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.flushGate.stop();
    this.resolveEnded(reason);
  }

  // ── Receiving ────────────────────────────────────────────────────────────────────────────

  private onMessage(message: PgoutputMessage): void {
    if (this.phase.name === 'closed' || this.phase.name === 'draining') return;
    this.lastMessageAt = Date.now();
    try {
      this.assembler.receive(message);
    } catch (error) {
      // Never acknowledge past a change that could not be mapped: reconnect and try again.
      this.logger.error({ err: error }, 'could not process a replication message');
      this.end(
        error instanceof CdcError
          ? error
          : new ChangeMappingError(`could not map a ${message.tag} message`, { cause: error }),
      );
    }
  }

  private onPart(part: TransactionPart): void {
    this.ready.push(part);
    this.readyActivities += part.activityCount;
    this.updateFlow();
    this.scheduleFlush();
  }

  private onKeepalive(walEnd: bigint, shouldRespond: boolean): void {
    if (this.phase.name === 'closed') return;
    this.lastMessageAt = Date.now();
    if (this.isIdle()) {
      // Everything before this keepalive was received and persisted: let the slot move on.
      if (walEnd > this.confirmed) {
        this.confirm(walEnd);
        return;
      }
    }
    if (shouldRespond) this.sendStatus(false);
  }

  // ── Flushing ─────────────────────────────────────────────────────────────────────────────

  /** `timerFired`: the messages that arrived together with the oldest ready part are all read. */
  private scheduleFlush(timerFired = false): void {
    const phase = this.phase;
    if ((phase.name !== 'streaming' && phase.name !== 'draining') || this.ready.length === 0) return;
    if (this.inFlight.length >= this.options.pipelineDepth) return;
    const oldest = this.ready[0] as TransactionPart;
    const waited = performance.now() - oldest.readyAt;
    if (
      this.readyActivities >= this.options.batchSize ||
      waited >= this.options.flushIntervalMs ||
      !oldest.final ||
      phase.name === 'draining' ||
      (timerFired && this.inFlight.length === 0)
    ) {
      this.startFlush(phase);
      this.scheduleFlush();
    } else {
      // Nothing in flight: write what this burst of messages brought at once (the timer runs
      // after the socket's pending data is read). Else gather until a slot frees or the interval.
      const now = performance.now();
      const dueAt = now + (this.inFlight.length === 0 ? 0 : this.options.flushIntervalMs - waited);
      if (this.flushTimer && this.flushDueAt <= dueAt) return;
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushDueAt = dueAt;
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.scheduleFlush(true);
      }, dueAt - now);
    }
  }

  /** Learn what is written (after a failed write: its commit may have succeeded) before writing more. */
  private fence(): void {
    this.phase = { name: 'fencing' };
    this.fenceRead = readWrittenPosition(this.options.sql, this.options.slotName).then(
      (written) => {
        if (this.phase.name !== 'fencing') return;
        this.phase = { name: 'streaming', written };
        this.updateFlow();
        this.scheduleFlush();
      },
      (error: unknown) => this.onWriteError(error),
    );
  }

  private startFlush(phase: Extract<StreamPhase, { name: 'streaming' | 'draining' }>): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    // Whole parts only, up to about batchSize activities (at least one part).
    let take = 0;
    let activities = 0;
    while (take < this.ready.length) {
      const next = (this.ready[take] as TransactionPart).activityCount;
      if (take > 0 && activities + next > this.options.batchSize) break;
      activities += next;
      take++;
    }
    const parts = this.ready.splice(0, take);
    this.readyActivities -= activities;
    let batch: ActivityBatch | null;
    try {
      batch = batchOfParts(parts, phase.written);
    } catch (error) {
      this.end(asError(error));
      return;
    }
    if (batch) phase.written = batch.to;
    const finals = parts.filter((p) => p.final);
    const entry: InFlightBatch = {
      parts,
      batch,
      acknowledgeLsn: finals.at(-1)?.commitLsn ?? null,
      started: performance.now(),
      committed: Promise.resolve(false),
    };
    const previous = this.inFlight.at(-1)?.committed ?? Promise.resolve(true);
    const write = batch
      ? writeActivityBatch(this.options.sql, this.options.slotName, batch, previous)
      : previous.then((ok) => {
          if (!ok) throw new EarlierBatchFailedError();
        });
    entry.committed = write.then(
      () => true,
      () => false,
    );
    this.inFlight.push(entry);
    write.then(
      () => this.onBatchWritten(entry),
      (error: unknown) => this.onBatchFailed(entry, error),
    );
  }

  private onBatchWritten(entry: InFlightBatch): void {
    this.inFlight.splice(this.inFlight.indexOf(entry), 1);
    if (this.retryMs !== this.options.retryInitialMs) this.logger.info('writing activities recovered');
    this.retryMs = this.options.retryInitialMs;
    // Batches commit in order, so this position covers every earlier batch too.
    if (entry.acknowledgeLsn !== null) this.flushGate.committed(entry.acknowledgeLsn);
    this.options.onBatch?.({
      activities: entry.batch?.activityCount ?? 0,
      parts: entry.parts.length,
      lastCommitLsn: (entry.parts.at(-1) as TransactionPart).commitLsn,
      writeMs: performance.now() - entry.started,
    });
    this.afterBatch();
  }

  private onBatchFailed(entry: InFlightBatch, error: unknown): void {
    this.inFlight.splice(this.inFlight.indexOf(entry), 1);
    this.failed.push(entry);
    if (this.inFlight.length > 0) return;
    // Every batch still in flight has settled: put the failed parts back, in order, and retry.
    const parts = this.failed
      .flatMap((f) => f.parts)
      .sort((a, b) => (a.commitLsn === b.commitLsn ? a.from - b.from : a.commitLsn < b.commitLsn ? -1 : 1));
    this.failed = [];
    this.ready.unshift(...parts);
    this.readyActivities += parts.reduce((sum, p) => sum + p.activityCount, 0);
    this.onWriteError(error);
  }

  /**
   * The database is going away (shutdown, restart, lost connection): end this replication
   * connection too, or a shutting-down server would wait forever for us to confirm its last WAL
   * while we wait for it to accept our writes. The worker reconnects with backoff and resumes
   * from the last acknowledged position. Any other error: retry here after a backoff.
   */
  private onWriteError(error: unknown): void {
    if (this.phase.name === 'closed') return;
    if (isConnectionLoss(error)) {
      this.endForLostDatabase('writing activities', error);
      return;
    }
    if (this.phase.name === 'draining') {
      this.end(asError(error));
      return;
    }
    this.logger.warn({ err: error, retryInMs: this.retryMs }, 'writing activities failed; retrying');
    const timer = setTimeout(() => this.fence(), this.retryMs);
    this.phase = { name: 'retrying', timer };
    this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs);
    this.updateFlow();
  }

  /**
   * The database went away while a batch waited for its WAL flush: as with a failed write, end
   * this replication connection. A shutting-down server refuses the probe and waits for us to
   * confirm its last WAL, which we never would while the flush is unknown: its shutdown would
   * hang. Any other failure: the gate probes again.
   */
  private onFlushProbeFailed(error: unknown): void {
    if (this.phase.name === 'closed' || !isConnectionLoss(error)) return;
    this.endForLostDatabase('asking how far WAL is flushed', error);
  }

  private endForLostDatabase(doing: string, error: unknown): void {
    this.logger.warn({ err: error }, `${doing} failed: the database connection is gone`);
    this.end(new SinkConnectionError('the database connection is gone', { cause: error }));
  }

  private afterBatch(): void {
    const phase = this.phase;
    if (phase.name === 'closed') return;
    this.updateFlow();
    this.scheduleFlush();
    if (phase.name === 'draining' && this.isDrained()) phase.drained();
  }

  /** Everything ready is written and acknowledged. */
  private isDrained(): boolean {
    return this.ready.length === 0 && this.inFlight.length === 0 && this.flushGate.isEmpty();
  }

  private isIdle(): boolean {
    return this.phase.name === 'streaming' && !this.assembler.isOpen() && this.isDrained();
  }

  // ── Talking back to the server ───────────────────────────────────────────────────────────

  /** Tell the server everything before `position` is persisted. */
  private confirm(position: bigint): void {
    if (position <= this.confirmed) return;
    this.confirmed = position;
    this.connection.sendStatus(position, false);
  }

  /** Periodic status with a reply request: keeps wal_sender_timeout happy and detects a dead link. */
  private sendStatus(ping = true): void {
    if (this.phase.name === 'closed') return;
    if (this.socketPaused) this.lastMessageAt = Date.now();
    if (Date.now() - this.lastMessageAt > this.options.silenceTimeoutMs) {
      this.end(new ReplicationSilenceError(this.options.silenceTimeoutMs));
      return;
    }
    this.connection.sendStatus(this.confirmed, ping);
  }

  /**
   * Pause the socket while not streaming or above maxBufferedChanges; resume below half. Data
   * and keepalives are handled in the order they arrive, which idle acknowledgements rely on.
   */
  private updateFlow(): void {
    const streaming = this.phase.name === 'streaming';
    const buffered = this.readyActivities + this.assembler.pendingActivities();
    const pause = !streaming || buffered >= this.options.maxBufferedChanges;
    const resume = streaming && buffered < this.options.maxBufferedChanges / 2;
    if (pause && !this.socketPaused) {
      this.connection.pause();
      this.socketPaused = true;
    } else if (resume && this.socketPaused) {
      this.connection.resume();
      this.socketPaused = false;
    }
  }
}

/**
 * The batch that writes `parts`, leaving out what is already written (a replay); null when
 * nothing is left. Parts arrive in WAL order, so a part is either wholly written or not at all.
 */
export function batchOfParts(
  parts: readonly TransactionPart[],
  written: WrittenPosition,
): ActivityBatch | null {
  const fresh = parts.filter((part) => !isWritten(part, written));
  const first = fresh[0];
  const last = fresh.at(-1);
  if (!first || !last) return null;
  const continues = written.open?.lsn === first.commitLsn;
  if (first.from > 0 && !(continues && written.open?.position === first.from)) {
    throw new WrittenPositionConflictError(
      `part ${formatLsn(first.commitLsn)}:${first.from} does not start where cdc_state ends`,
    );
  }
  const lastFinal = fresh.findLast((p) => p.final);
  const lastWithActivity = fresh.findLast((p) => p.lastActivityPosition !== null);
  return {
    copyRows: contiguousRuns(fresh.map((p) => p.copyRows)),
    activityCount: fresh.reduce((sum, p) => sum + p.activityCount, 0),
    lastActivity:
      lastWithActivity?.lastActivityPosition == null
        ? null
        : { lsn: lastWithActivity.commitLsn, position: lastWithActivity.lastActivityPosition },
    organizationIds: [...new Set(fresh.flatMap((p) => p.organizationIds))],
    countChanges: fresh.length === 1 ? first.countChanges : fresh.flatMap((p) => p.countChanges),
    from: { commitLsn: first.commitLsn, position: first.from },
    to: {
      lastLsn: lastFinal?.commitLsn ?? written.lastLsn,
      open: last.final ? null : { lsn: last.commitLsn, position: last.to },
    },
    lastCommitTime: isoFromMicros(last.commitTime),
  };
}

function isWritten(part: TransactionPart, written: WrittenPosition): boolean {
  if (part.commitLsn <= written.lastLsn) return true;
  const open = written.open;
  if (open?.lsn !== part.commitLsn) return false;
  // an empty last part at the open position is what closes the transaction: not written yet
  // (a transaction of exactly n full parts ends with one, often in a batch of its own)
  if (part.final && part.from === open.position) return false;
  if (part.to <= open.position) return true;
  if (part.from < open.position) {
    throw new WrittenPositionConflictError(
      `part ${formatLsn(part.commitLsn)}:${part.from}-${part.to} straddles the written position ${open.position}`,
    );
  }
  return false;
}

/** No SQLSTATE at all (a socket error), or one that says the server is unavailable. */
function isConnectionLoss(error: unknown): boolean {
  if (error instanceof CdcError) return false;
  const code = errorCode(error);
  return !isSqlState(code) || isDatabaseUnavailable(code);
}

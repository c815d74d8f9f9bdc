/**
 * One replication connection, from START_REPLICATION to its end. The worker makes a NEW one on
 * every (re)connect: pg-logical-replication, resubscribed on the same instance, would resume
 * from the last *received* LSN and silently skip what was never acknowledged.
 *
 *   begin ──► insert/update/delete (mapped to activities at once) ──► commit ──► ready queue
 *   ready ≥ batchSize, or the oldest ready transaction ≥ flushIntervalMs old
 *        ──► batch ──► activity-sink.ts: one DB transaction ──► acknowledge its last commit LSN
 *   up to `pipelineDepth` batches in flight: the next one COPYs while the previous commits;
 *        they commit (and are acknowledged) strictly in order
 *   write fails ──► acknowledgements held, socket paused, failed batches requeued, re-read
 *        cdc_state.last_lsn (a failed commit may have succeeded), retry with backoff
 *   buffered ≥ maxBufferedChanges ──► socket paused until the flushes catch up
 *   keepalive while idle (nothing open, ready or in flight) ──► acknowledge the keepalive LSN
 *
 * Acknowledged positions: the library sends `lsn + 1` as the flushed position. After a commit we
 * confirm `commitLsn + 1` (that transaction is done, the next one's commit lies beyond); after
 * an idle keepalive exactly its LSN (a commit record may start right there).
 */
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import type { Logger } from 'pino';
import type postgres from 'postgres';
import {
  type ActivityRow,
  activityFromChange,
  type CountDelta,
  countDeltasOfChange,
  isoFromMicros,
} from './activity.ts';
import { type ActivityBatch, readWrittenLsn, writeActivityBatch } from './activity-sink.ts';
import { keepColumnsAsText } from './column-values.ts';
import { PGOUTPUT_PROTO_VERSION, PUBLICATION_NAME } from './constants.ts';
import { formatLsn, parseLsn } from './lsn.ts';

export interface ReplicationStreamOptions {
  databaseUrl: string;
  slotName: string;
  /** Pool the batches are written with (at least `pipelineDepth` + 1 connections). */
  sql: postgres.Sql;
  logger: Logger;
  /** The slot's confirmed_flush_lsn when this connection starts. */
  confirmedLsn: bigint;
  batchSize: number;
  flushIntervalMs: number;
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
  /** Activities written (replayed transactions that were already written are not counted). */
  activities: number;
  transactions: number;
  lastCommitLsn: bigint;
  writeMs: number;
}

interface SourceTransaction {
  commitLsn: bigint;
  commitTime: bigint;
  xid: number;
  nextPosition: number;
  activities: ActivityRow[];
  deltas: CountDelta[];
  /** performance.now() when its commit arrived. */
  readyAt: number;
}

interface InFlightBatch {
  transactions: SourceTransaction[];
  batch: ActivityBatch;
  started: number;
  /** Resolves true once committed, false if the write failed. */
  committed: Promise<boolean>;
}

type ReplicationMessage = Pgoutput.Message;

export class ReplicationStream {
  private readonly options: ReplicationStreamOptions;
  private readonly service: LogicalReplicationService;
  private readonly logger: Logger;

  private open: SourceTransaction | null = null;
  private ready: SourceTransaction[] = [];
  private readyChanges = 0;
  private inFlight: InFlightBatch[] = [];
  private failed: InFlightBatch[] = [];
  /** Highest source commit LSN known written; null until read (on connect, after a failure). */
  private writtenLsn: bigint | null = null;
  private fencing: Promise<void> | null = null;
  private retrying = false;
  private retryMs: number;
  private flushTimer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  /** Position the server has been told is flushed (the slot's confirmed_flush_lsn). */
  private confirmed: bigint;
  private lastMessageAt = Date.now();
  private paused = false;
  private draining = false;
  private resolveDrained: () => void = () => {};
  private closed = false;
  private resolveEnded: (reason: Error | null) => void = () => {};
  private readonly ended: Promise<Error | null>;

  constructor(options: ReplicationStreamOptions) {
    this.options = options;
    this.logger = options.logger;
    this.confirmed = options.confirmedLsn;
    this.retryMs = options.retryInitialMs;
    this.ended = new Promise((resolve) => {
      this.resolveEnded = resolve;
    });
    this.service = new LogicalReplicationService(
      {
        connectionString: options.databaseUrl,
        application_name: 'sync-cdc',
        // Timestamps in `row` are PostgreSQL's text output: make it the same on every server.
        options: '-c TimeZone=UTC -c DateStyle=ISO',
        keepAlive: true,
      },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
  }

  /** Stream until the connection ends; resolves with the reason (null after `stop()`). */
  async run(): Promise<Error | null> {
    this.service.on('data', (_lsn: string, message: ReplicationMessage) => this.onMessage(message));
    this.service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) =>
      this.onKeepalive(lsn, shouldRespond),
    );
    this.service.on('error', (error: Error) => this.end(error));
    this.service.on('start', () => {
      this.statusTimer = setInterval(() => this.sendStatus(), this.options.statusIntervalMs);
      this.options.onStreaming?.();
    });
    const plugin = new PgoutputPlugin({
      protoVersion: PGOUTPUT_PROTO_VERSION,
      publicationNames: [PUBLICATION_NAME],
    });
    // Without a start LSN the server resumes at the slot's confirmed_flush_lsn.
    this.service.subscribe(plugin, this.options.slotName).then(
      () => this.end(this.draining ? null : new Error('the server ended the replication stream')),
      (error: unknown) => this.end(error instanceof Error ? error : new Error(String(error))),
    );
    const reason = await this.ended;
    // Writes already sent may still commit (harmless: the next connection re-reads last_lsn).
    await Promise.all([...this.inFlight.map((b) => b.committed), this.fencing]);
    await withTimeout(this.service.destroy(), 2_000).catch(() => {});
    return reason;
  }

  /** Graceful end: drop the incomplete transaction, write and acknowledge the complete ones. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this.closed) return;
    this.draining = true;
    this.pause();
    this.open = null;
    if (this.ready.length > 0 || this.inFlight.length > 0) {
      const drained = new Promise<void>((resolve) => {
        this.resolveDrained = resolve;
      });
      this.scheduleFlush();
      await Promise.race([drained, sleep(timeoutMs)]);
    }
    this.end(null);
    await this.ended;
  }

  private end(reason: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.resolveEnded(reason);
  }

  // ── Receiving ────────────────────────────────────────────────────────────────────────────

  private onMessage(message: ReplicationMessage): void {
    if (this.closed || this.draining) return;
    this.lastMessageAt = Date.now();
    try {
      switch (message.tag) {
        case 'relation':
          keepColumnsAsText(message);
          break;
        case 'begin':
          if (this.open) throw new Error('begin inside an open transaction');
          this.open = {
            commitLsn: parseLsn(requireLsn(message.commitLsn)),
            commitTime: message.commitTime as bigint,
            xid: message.xid,
            nextPosition: 0,
            activities: [],
            deltas: [],
            readyAt: 0,
          };
          break;
        case 'insert':
        case 'update':
        case 'delete':
          this.addChange(message);
          break;
        case 'truncate':
          if (this.open) this.open.nextPosition++;
          this.logger.warn(
            { tables: message.relations.map((r) => r.name) },
            'TRUNCATE of a tracked table: it gets no activities and entity_counts go stale until the next resync',
          );
          break;
        case 'commit':
          this.completeTransaction(message);
          break;
        default:
          break;
      }
    } catch (error) {
      // Never acknowledge past a change that could not be mapped: reconnect and try again.
      this.logger.error({ err: error }, 'could not process a replication message');
      this.end(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private addChange(message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete): void {
    const tx = this.open;
    if (!tx) throw new Error(`${message.tag} outside a transaction`);
    const position = tx.nextPosition++;
    const activity = activityFromChange(message, {
      commitLsn: tx.commitLsn,
      position,
      commitTime: tx.commitTime,
      xid: tx.xid,
    });
    if (!activity) return;
    tx.activities.push(activity);
    for (const delta of countDeltasOfChange(message)) tx.deltas.push(delta);
  }

  private completeTransaction(message: Pgoutput.MessageCommit): void {
    const tx = this.open;
    if (!tx) throw new Error('commit without begin');
    if (message.commitLsn && parseLsn(message.commitLsn) !== tx.commitLsn) {
      throw new Error(`commit LSN ${message.commitLsn} differs from its begin's ${formatLsn(tx.commitLsn)}`);
    }
    this.open = null;
    tx.readyAt = performance.now();
    this.ready.push(tx);
    this.readyChanges += tx.activities.length;
    if (this.readyChanges >= this.options.maxBufferedChanges) this.pause();
    this.scheduleFlush();
  }

  private onKeepalive(lsn: string, shouldRespond: boolean): void {
    if (this.closed) return;
    this.lastMessageAt = Date.now();
    if (this.isIdle()) {
      // Everything before this keepalive was received and persisted: let the slot move on.
      const serverPosition = parseLsn(lsn);
      if (serverPosition > this.confirmed) {
        this.confirm(serverPosition);
        return;
      }
    }
    if (shouldRespond) this.sendStatus(false);
  }

  // ── Flushing ─────────────────────────────────────────────────────────────────────────────

  private scheduleFlush(): void {
    if (this.closed || this.retrying || this.ready.length === 0) return;
    if (this.writtenLsn === null) {
      this.fence();
      return;
    }
    if (this.inFlight.length >= this.options.pipelineDepth) return;
    const oldest = this.ready[0] as SourceTransaction;
    const waited = performance.now() - oldest.readyAt;
    if (
      this.readyChanges >= this.options.batchSize ||
      waited >= this.options.flushIntervalMs ||
      this.draining
    ) {
      this.startFlush();
      this.scheduleFlush();
    } else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.scheduleFlush();
      }, this.options.flushIntervalMs - waited);
    }
  }

  /** Learn what is already written (on connect, after a failed write) before writing more. */
  private fence(): void {
    if (this.fencing) return;
    this.fencing = readWrittenLsn(this.options.sql, this.options.slotName).then(
      (lsn) => {
        this.writtenLsn = lsn;
        this.fencing = null;
        this.scheduleFlush();
      },
      (error: unknown) => {
        this.fencing = null;
        this.onWriteError(error);
      },
    );
  }

  private startFlush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    // Whole source transactions only, up to about batchSize changes (at least one transaction).
    let take = 0;
    let changes = 0;
    while (take < this.ready.length) {
      const next = (this.ready[take] as SourceTransaction).activities.length;
      if (take > 0 && changes + next > this.options.batchSize) break;
      changes += next;
      take++;
    }
    const transactions = this.ready.splice(0, take);
    this.readyChanges -= changes;
    const written = this.writtenLsn ?? -1n;
    // Transactions at or below the written position are replays of what a previous connection wrote.
    const fresh = transactions.filter((t) => t.commitLsn > written);
    const last = transactions.at(-1) as SourceTransaction;
    const batch: ActivityBatch = {
      activities:
        fresh.length === 1 ? (fresh[0] as SourceTransaction).activities : fresh.flatMap((t) => t.activities),
      deltas: fresh.flatMap((t) => t.deltas),
      lastCommitLsn: last.commitLsn,
      lastCommitTime: isoFromMicros(last.commitTime),
    };
    const entry: InFlightBatch = {
      transactions,
      batch,
      started: performance.now(),
      committed: Promise.resolve(false),
    };
    const previous = this.inFlight.at(-1)?.committed ?? Promise.resolve(true);
    const write =
      batch.activities.length > 0
        ? writeActivityBatch(this.options.sql, this.options.slotName, batch, previous)
        : previous.then((ok) => {
            if (!ok) throw new Error('an earlier batch was not written');
          });
    if (batch.lastCommitLsn > written) this.writtenLsn = batch.lastCommitLsn;
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
    this.confirm(entry.batch.lastCommitLsn + 1n);
    this.options.onBatch?.({
      activities: entry.batch.activities.length,
      transactions: entry.transactions.length,
      lastCommitLsn: entry.batch.lastCommitLsn,
      writeMs: performance.now() - entry.started,
    });
    this.afterBatch();
  }

  private onBatchFailed(entry: InFlightBatch, error: unknown): void {
    this.inFlight.splice(this.inFlight.indexOf(entry), 1);
    this.failed.push(entry);
    if (this.inFlight.length > 0) return;
    // Every batch still in flight has settled: put the failed ones back, in order, and retry.
    const transactions = this.failed
      .flatMap((f) => f.transactions)
      .sort((a, b) => (a.commitLsn < b.commitLsn ? -1 : 1));
    this.failed = [];
    this.ready.unshift(...transactions);
    this.readyChanges += transactions.reduce((sum, t) => sum + t.activities.length, 0);
    // A failed commit may still have succeeded: find out before writing again.
    this.writtenLsn = null;
    this.onWriteError(error);
  }

  /**
   * The database is going away (shutdown, restart, lost connection): end this replication
   * connection too, or a shutting-down server would wait forever for us to confirm its last WAL
   * while we wait for it to accept our writes. The worker reconnects with backoff and resumes
   * from the last acknowledged position. Any other error: retry here.
   */
  private onWriteError(error: unknown): void {
    if (isConnectionError(error)) {
      this.logger.warn({ err: error }, 'writing activities failed: the database connection is gone');
      this.end(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.retryLater(error);
  }

  /** Backpressure: hold acknowledgements, stop reading, try again after a growing pause. */
  private retryLater(error: unknown): void {
    if (this.closed) return;
    this.pause();
    this.retrying = true;
    this.logger.warn({ err: error, retryInMs: this.retryMs }, 'writing activities failed; retrying');
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.retrying = false;
      this.scheduleFlush();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, this.options.retryMaxMs);
  }

  private afterBatch(): void {
    if (this.closed && !this.draining) return;
    if (this.readyChanges < this.options.maxBufferedChanges / 2 && !this.draining && !this.retrying)
      this.resume();
    this.scheduleFlush();
    if (this.draining && this.ready.length === 0 && this.inFlight.length === 0) this.resolveDrained();
  }

  private isIdle(): boolean {
    return (
      !this.open &&
      this.ready.length === 0 &&
      this.inFlight.length === 0 &&
      !this.fencing &&
      !this.retrying &&
      !this.draining
    );
  }

  // ── Talking back to the server ───────────────────────────────────────────────────────────

  /** Tell the server everything before `position` is persisted (the library adds 1). */
  private confirm(position: bigint): void {
    if (position <= this.confirmed) return;
    this.confirmed = position;
    void this.service.acknowledge(formatLsn(position - 1n));
  }

  /** Periodic status with a reply request: keeps wal_sender_timeout happy and detects a dead link. */
  private sendStatus(ping = true): void {
    if (this.closed) return;
    if (this.paused) this.lastMessageAt = Date.now();
    if (Date.now() - this.lastMessageAt > this.options.silenceTimeoutMs) {
      this.end(new Error('no message from the server within the silence timeout'));
      return;
    }
    void this.service.acknowledge(formatLsn(this.confirmed - 1n), ping);
  }

  /**
   * The library has no pause of its own in the synchronous mode used here (its flow-control
   * mode processes messages asynchronously, which would break the ordering between data and
   * keepalives that idle acknowledgements rely on), so pause the underlying socket.
   */
  private pause(): void {
    if (this.paused) return;
    socketOf(this.service)?.pause();
    this.paused = true;
  }

  private resume(): void {
    if (!this.paused) return;
    socketOf(this.service)?.resume();
    this.paused = false;
  }
}

/** SQLSTATE classes 08 (connection), 57P (shutdown, cannot connect now), or no SQLSTATE at all (socket errors). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || code.startsWith('57P') || code === '53300';
}

function socketOf(service: LogicalReplicationService): { pause(): void; resume(): void } | undefined {
  return (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } | null })
    ._connection?.stream;
}

function requireLsn(lsn: string | null): string {
  if (!lsn) throw new Error('begin message without a commit LSN');
  return lsn;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, sleep(ms).then(() => undefined)]);
}

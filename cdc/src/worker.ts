/**
 * The CDC worker's lifecycle.
 *
 *        start
 *          │
 *          ▼
 *     ┌─► preparing ── publication, replica identity, slot check ──► (missing/lost) resyncing ─┐
 *     │      │                                                                                   │
 *     │      ▼ ◄─────────────────────────────────────────────────────────────────────────────────┘
 *     │   connecting ── START_REPLICATION on a NEW service instance, from confirmed_flush_lsn
 *     │      │
 *     │      ▼
 *     │   streaming ⇄ flushing (batch → one DB transaction → acknowledge)   replication-stream.ts
 *     │      │
 *     │      ▼ connection lost, server restart, write to the sink impossible, mapping error
 *     └── reconnecting (backoff 100 ms → 5 s; the slot is never dropped for a transient error)
 *
 *   stop(): streaming ──► draining (flush + acknowledge complete transactions) ──► stopped
 *
 * Beside it, the retention job deletes old activities and idempotency records.
 */

import { DEFAULT_SLOT_NAME } from '@sync/db/constants';
import { formatLsn } from '@sync/db/lsn';
import { inspectSlot, prepareReplication, recordStreaming, SlotSetupError } from '@sync/db/replication-setup';
import pino, { type Logger } from 'pino';
import { DEFAULTS } from './constants.ts';
import { type BatchReport, ReplicationStream } from './replication-stream.ts';
import { startRetentionJob } from './retention.ts';
import { createWriterPool } from './writer-pool.ts';

export type WorkerState = 'preparing' | 'connecting' | 'streaming' | 'reconnecting' | 'stopping' | 'stopped';

export interface CdcWorkerOptions {
  databaseUrl: string;
  slotName?: string;
  logger?: Logger;
  batchSize?: number;
  flushIntervalMs?: number;
  maxBufferedChanges?: number;
  /** Batches written concurrently (they still commit in order). */
  pipelineDepth?: number;
  reconnectInitialMs?: number;
  reconnectMaxMs?: number;
  /** How often the worker sends a status update asking the server for a reply (a keepalive). */
  statusIntervalMs?: number;
  /** Days of activities to keep (`ACTIVITY_RETENTION_DAYS`, default 30). */
  activityRetentionDays?: number;
  /** Days of applied-transaction records to keep (`IDEMPOTENCY_RETENTION_DAYS`, default 7). */
  idempotencyRetentionDays?: number;
  retentionIntervalMs?: number;
  throughputLogIntervalMs?: number;
  /** Called after each persisted batch (metrics, benchmarks). */
  onBatch?: (batch: BatchReport) => void;
}

export interface CdcWorker {
  readonly slotName: string;
  state(): WorkerState;
  /** Resolves the next time the worker is streaming (immediately if it is). */
  streaming(): Promise<void>;
  /** Flush and acknowledge what is complete, then close every connection. */
  stop(): Promise<void>;
}

export function startCdcWorker(options: CdcWorkerOptions): CdcWorker {
  const slotName = options.slotName ?? DEFAULT_SLOT_NAME;
  const logger = (options.logger ?? pino({ name: 'cdc' })).child({ slot: slotName });
  const settings = {
    batchSize: options.batchSize ?? DEFAULTS.batchSize,
    flushIntervalMs: options.flushIntervalMs ?? DEFAULTS.flushIntervalMs,
    maxBufferedChanges: options.maxBufferedChanges ?? DEFAULTS.maxBufferedChanges,
    pipelineDepth: options.pipelineDepth ?? DEFAULTS.pipelineDepth,
    reconnectInitialMs: options.reconnectInitialMs ?? DEFAULTS.reconnectInitialMs,
    reconnectMaxMs: options.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs,
    statusIntervalMs: options.statusIntervalMs ?? DEFAULTS.statusIntervalMs,
  };
  // one connection per batch in flight, one for fencing and setup, one for the flush probe, one
  // for retention
  const sql = createWriterPool(options.databaseUrl, settings.pipelineDepth + 3);

  let state: WorkerState = 'preparing';
  let stream: ReplicationStream | null = null;
  let stopping = false;
  let wakeUp: () => void = () => {};
  let streamingWaiters: (() => void)[] = [];
  const throughput = new ThroughputLog(
    logger,
    options.throughputLogIntervalMs ?? DEFAULTS.throughputLogIntervalMs,
  );

  const setState = (next: WorkerState) => {
    state = next;
    if (next === 'streaming') {
      for (const resolve of streamingWaiters) resolve();
      streamingWaiters = [];
    }
  };

  const retention = startRetentionJob({
    sql,
    logger,
    activityRetentionDays: options.activityRetentionDays ?? DEFAULTS.activityRetentionDays,
    idempotencyRetentionDays: options.idempotencyRetentionDays ?? DEFAULTS.idempotencyRetentionDays,
    intervalMs: options.retentionIntervalMs ?? DEFAULTS.retentionIntervalMs,
  });

  async function runLoop(): Promise<void> {
    let attempt = 0;
    logger.info('cdc worker starting');
    while (!stopping) {
      let streamed = false;
      try {
        setState(attempt === 0 ? 'preparing' : 'reconnecting');
        const preparation = await prepareReplication(sql, options.databaseUrl, slotName, logger);
        const slot = await inspectSlot(sql, slotName);
        // stop() may have come while preparing; from here to run() nothing awaits
        if (stopping) break;
        if (!slot.exists || slot.confirmedFlushLsn === null) {
          throw new SlotSetupError('the slot vanished right after setup');
        }
        setState('connecting');
        stream = new ReplicationStream({
          databaseUrl: options.databaseUrl,
          slotName,
          sql,
          logger,
          confirmedLsn: slot.confirmedFlushLsn,
          batchSize: settings.batchSize,
          flushIntervalMs: settings.flushIntervalMs,
          flushProbeIntervalMs: DEFAULTS.flushProbeIntervalMs,
          maxBufferedChanges: settings.maxBufferedChanges,
          pipelineDepth: settings.pipelineDepth,
          retryInitialMs: settings.reconnectInitialMs,
          retryMaxMs: settings.reconnectMaxMs,
          statusIntervalMs: settings.statusIntervalMs,
          silenceTimeoutMs: DEFAULTS.silenceTimeoutMs,
          onStreaming: () => {
            streamed = true;
            attempt = 0;
            setState('streaming');
            recordStreaming(sql, slotName).catch((error) =>
              logger.warn({ err: error }, 'could not record that the worker streams'),
            );
            logger.info(
              { from: formatLsn(slot.confirmedFlushLsn ?? 0n), preparation: preparation.kind },
              'streaming changes',
            );
          },
          onBatch: (batch) => {
            throughput.record(batch);
            options.onBatch?.(batch);
          },
        });
        const reason = await stream.run();
        stream = null;
        if (stopping) break;
        logger.warn({ err: reason }, 'replication connection ended');
      } catch (error) {
        stream = null;
        if (stopping) break;
        logger.warn({ err: error }, 'replication setup or connection failed');
      }
      attempt = streamed ? 1 : attempt + 1;
      const backoffMs = Math.min(settings.reconnectInitialMs * 2 ** (attempt - 1), settings.reconnectMaxMs);
      logger.info({ attempt, backoffMs }, 'reconnecting');
      setState('reconnecting');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, backoffMs);
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  const loop = runLoop().catch((error) => logger.error({ err: error }, 'cdc worker loop crashed'));

  return {
    slotName,
    state: () => state,
    streaming: () =>
      state === 'streaming'
        ? Promise.resolve()
        : new Promise<void>((resolve) => streamingWaiters.push(resolve)),
    async stop() {
      if (stopping) return loop;
      stopping = true;
      setState('stopping');
      wakeUp();
      await retention.stop();
      await stream?.stop();
      await loop;
      throughput.flush();
      await sql.end({ timeout: 2 });
      setState('stopped');
      logger.info('cdc worker stopped');
    },
  };
}

/** Logs batch throughput at most every `intervalMs` (info), and each batch at debug. */
class ThroughputLog {
  private activities = 0;
  private batches = 0;
  private since = performance.now();
  private lastCommitLsn = 0n;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  record(batch: BatchReport): void {
    this.activities += batch.activities;
    this.batches++;
    this.lastCommitLsn = batch.lastCommitLsn;
    this.logger.debug(
      { activities: batch.activities, parts: batch.parts, writeMs: Math.round(batch.writeMs) },
      'batch written',
    );
    if (performance.now() - this.since >= this.intervalMs) this.flush();
  }

  flush(): void {
    if (this.batches === 0) return;
    const seconds = (performance.now() - this.since) / 1000;
    this.logger.info(
      {
        activities: this.activities,
        batches: this.batches,
        perSecond: Math.round(this.activities / seconds),
        lastLsn: formatLsn(this.lastCommitLsn),
      },
      'activities written',
    );
    this.activities = 0;
    this.batches = 0;
    this.since = performance.now();
  }
}

/**
 * The CDC worker's own protocol words and defaults, declared once. The names it shares with the
 * API (publication, slot, NOTIFY channel) are in `@sync/db/constants`.
 */

/** pgoutput: protocol version 1 streams committed transactions only, in commit order. */
export const PGOUTPUT_PROTO_VERSION = 1;

/**
 * Node flags every launcher of the worker passes (`npm start`, `npm run start -w cdc`, the tests
 * and benchmarks). The worker's live data is a few batches whatever the size of a source
 * transaction, but V8 lets the old space grow far beyond that before collecting: the cap keeps
 * its RSS under 300 MB while it reads a transaction of 500,000 changes.
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=192'] as const;

export const DEFAULTS = {
  /** Flush at once when no batch is in flight; else when this many changes are buffered … */
  batchSize: 5_000,
  /** … or when the oldest complete transaction has waited this long (while batches are in flight). */
  flushIntervalMs: 20,
  /** While a committed batch waits for its WAL to be flushed, ask PostgreSQL this often. */
  flushProbeIntervalMs: 20,
  /** Stop reading the replication socket above this many buffered changes (backpressure). */
  maxBufferedChanges: 10_000,
  /** Batches written concurrently; they commit strictly in order. */
  pipelineDepth: 2,
  reconnectInitialMs: 100,
  reconnectMaxMs: 5_000,
  /** Status update with a reply request; keeps wal_sender_timeout satisfied while paused. */
  statusIntervalMs: 10_000,
  /** No message (data or keepalive) for this long means the connection is dead. */
  silenceTimeoutMs: 45_000,
  activityRetentionDays: 30,
  idempotencyRetentionDays: 7,
  retentionIntervalMs: 60 * 60 * 1000,
  retentionBatchSize: 5_000,
  throughputLogIntervalMs: 10_000,
} as const;

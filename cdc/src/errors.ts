/**
 * The worker's own failures, by name. Each ends the replication connection; the worker then
 * reconnects with backoff and resumes from the acknowledged position (nothing is lost).
 */

/** Base class: `cause` keeps the underlying error when there is one. */
export class CdcError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The message sequence broke pgoutput's rules (begin inside a transaction, commit LSN mismatch…). */
export class ReplicationProtocolError extends CdcError {}

/** A message could not be mapped to activities: never acknowledge past it. */
export class ChangeMappingError extends CdcError {}

/** The server ended START_REPLICATION by itself. */
export class StreamEndedError extends CdcError {
  constructor() {
    super('the server ended the replication stream');
  }
}

/** Neither data nor keepalive for the silence timeout: the connection is dead. */
export class ReplicationSilenceError extends CdcError {
  constructor(timeoutMs: number) {
    super(`no message from the server for ${timeoutMs} ms`);
  }
}

/** The database connection the batches are written with is gone (shutdown, restart, network). */
export class SinkConnectionError extends CdcError {}

/**
 * cdc_state says a batch is not the next one to write (another process wrote it, or this
 * connection's idea of the written position is stale): nothing is committed.
 */
export class WrittenPositionConflictError extends CdcError {}

/** A batch was not written because the batch before it failed (they commit in order). */
export class EarlierBatchFailedError extends CdcError {
  constructor() {
    super('an earlier batch was not written');
  }
}

export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/**
 * Acknowledgements held until PostgreSQL has flushed the WAL of the batch that earned them.
 * The sink commits asynchronously (activity-sink.ts says why that is safe), so a COMMIT that
 * returned is not yet durable; the slot may only move past a source transaction once the
 * activities written for it are.
 *
 *   batch committed ──► waiting (no mark) ──► probe sent after the commit:
 *                                              mark := pg_current_wal_insert_lsn()  (≥ the commit's end)
 *                       waiting (mark)    ──► probe: pg_current_wal_flush_lsn() ≥ mark
 *                                              ──► onFlushed(acknowledgeLsn), in commit order
 *
 * One probe at a time, every `intervalMs` while anything waits. A failed probe is tried again:
 * the acknowledgements wait, and a worker that reconnects re-reads what is written. Each failure
 * is also reported (`onProbeFailed`): a server that is shutting down refuses the probe for good,
 * while its walsender waits for this worker to confirm the last WAL, so the replication
 * connection has to end for the shutdown to finish.
 */
import type postgres from 'postgres';

interface Waiting {
  acknowledgeLsn: bigint;
  /** Set by the first probe sent after the commit: an LSN at or beyond the commit record's end. */
  mark: bigint | null;
}

export class FlushGate {
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private stopped = false;

  constructor(
    private readonly sql: postgres.Sql,
    private readonly intervalMs: number,
    private readonly onFlushed: (acknowledgeLsn: bigint) => void,
    private readonly onProbeFailed: (error: unknown) => void,
  ) {}

  /** A batch committed; acknowledge `acknowledgeLsn` once its WAL is flushed. */
  committed(acknowledgeLsn: bigint): void {
    this.waiting.push({ acknowledgeLsn, mark: null });
    this.schedule(0);
  }

  isEmpty(): boolean {
    return this.waiting.length === 0;
  }

  /** Forget what waits (the connection ended: the next one re-reads what is written). */
  stop(): void {
    this.stopped = true;
    this.waiting = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped || this.probing || this.timer || this.waiting.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.probe();
    }, delayMs);
  }

  private async probe(): Promise<void> {
    this.probing = true;
    // Only batches that committed before this probe is sent may take its insert position.
    const unmarked = this.waiting.filter((w) => w.mark === null);
    try {
      const [wal] = await this.sql<{ inserted: string; flushed: string }[]>`
        select pg_current_wal_insert_lsn() - '0/0' as inserted, pg_current_wal_flush_lsn() - '0/0' as flushed`;
      if (this.stopped || !wal) return;
      const inserted = BigInt(wal.inserted);
      for (const w of unmarked) w.mark = inserted;
      this.release(BigInt(wal.flushed));
    } catch (error) {
      // tried again below; acknowledgements wait
      if (!this.stopped) this.onProbeFailed(error);
    } finally {
      this.probing = false;
      this.schedule(this.intervalMs);
    }
  }

  /** Acknowledge the longest prefix whose WAL is flushed (acknowledgements only ever move forward). */
  private release(flushed: bigint): void {
    let done = 0;
    while (done < this.waiting.length) {
      const mark = (this.waiting[done] as Waiting).mark;
      if (mark === null || mark > flushed) break;
      done++;
    }
    if (done === 0) return;
    const last = this.waiting[done - 1] as Waiting;
    this.waiting.splice(0, done);
    this.onFlushed(last.acknowledgeLsn);
  }
}

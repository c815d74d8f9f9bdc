/**
 * Re-reads a query when a table of the database changes, in this tab or another, at most once
 * per `intervalMs`. Dexie's liveQuery re-runs on every write, which during a replay (hundreds
 * of writes a second, each re-reading the whole outbox) starves the drainer it observes.
 * Writes the tab already shows from memory (`shown()`, once per committed transaction that
 * wrote) need no read: a read is due only when a change came that no such write explains.
 *
 *   write ─► storagemutated (+1) ─► idle? read now : mark dirty ─► read again when the interval ends
 *   own write shown, committed (−1)                  a read with nothing unexplained is skipped
 */
import { Dexie, type ObservabilitySet } from 'dexie';

export interface TableWatch {
  /** Reads now, or right after the current read, without waiting for the interval. */
  refresh(): Promise<void>;
  /**
   * A transaction of this tab that wrote to the tables committed, and what it wrote is shown
   * already: its change event asks for no read. Called after the transaction's promise
   * resolves, in the same task as its event (IndexedDB's complete event, then its promise).
   */
  shown(): void;
  stop(): void;
}

export function watchTable<T>(options: {
  databaseName: string;
  tables: readonly string[];
  read: () => Promise<T>;
  onValue: (value: T) => void;
  onError?: (error: unknown) => void;
  intervalMs?: number;
}): TableWatch {
  const intervalMs = options.intervalMs ?? 50;
  const prefixes = options.tables.map((table) => `idb://${options.databaseName}/${table}/`);
  let stopped = false;
  let running: Promise<void> | undefined;
  let dirty = false;
  let lastReadAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let readMs = 0;
  let urgent = false;
  /** Change events since the last read began, less the tab's own shown writes among them. */
  let unexplained = 1;

  const read = (): Promise<void> => {
    if (running) {
      dirty = true;
      return running;
    }
    const started = Date.now();
    lastReadAt = started;
    unexplained = 0;
    running = options
      .read()
      .then((value) => {
        // a slow read (a big outbox) is repeated less often, so reading never takes over
        readMs = Date.now() - started;
        if (!stopped) options.onValue(value);
      }, options.onError)
      .finally(() => {
        running = undefined;
        if (dirty && !stopped) {
          dirty = false;
          if (urgent) void read();
          else schedule();
        }
        urgent = false;
      });
    return running;
  };

  function schedule() {
    if (timer || stopped) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        if (unexplained > 0) void read();
      },
      Math.max(0, lastReadAt + Math.max(intervalMs, 4 * readMs) - Date.now()),
    );
  }

  const onMutation = (parts: ObservabilitySet) => {
    if (Object.keys(parts).some((part) => prefixes.some((prefix) => part.startsWith(prefix)))) {
      unexplained++;
      if (running) dirty = true;
      else schedule();
    }
  };
  Dexie.on('storagemutated', onMutation);
  void read();

  return {
    refresh() {
      if (running) urgent = true;
      clearTimeout(timer);
      timer = undefined;
      return read();
    },
    shown() {
      // a read begun since the write's event already sees the write
      unexplained = Math.max(0, unexplained - 1);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      Dexie.on.storagemutated.unsubscribe(onMutation);
    },
  };
}

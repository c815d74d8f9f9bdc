/**
 * Reads started before anyone asks for them, each taken at most once:
 *
 *   start(key, read) ──► held (in flight or done) ──┬─ take(key) within ttlMs ─► the read, removed
 *                                                   └─ nobody takes it ────────► dropped at ttlMs
 *   start while `maxEntries` are held, or `maxEntriesPerOwner` of the same owner
 *     ─► not started (the asker reads for itself)
 *
 * A shape client asks for a snapshot's next chunk as soon as it has the previous one, so the
 * server reads that chunk while it writes the previous one, and the request finds it ready.
 * Memory stays bounded by `maxEntries` results; a read nobody takes costs one read and is gone
 * after `ttlMs`. A failed read is dropped like an expired one: `take` then finds nothing.
 * The owner (a shape's organization) keeps one owner's reads nobody takes from using up every
 * entry: the others' next chunks are still read ahead.
 */
export function readAhead<T>(options: { maxEntries: number; maxEntriesPerOwner: number; ttlMs: number }) {
  const held = new Map<string, { owner: string; promise: Promise<T>; timer: NodeJS.Timeout }>();
  const heldBy = (owner: string) => [...held.values()].filter((entry) => entry.owner === owner).length;
  const drop = (key: string, entry: { timer: NodeJS.Timeout }) => {
    if (held.get(key) !== entry) return;
    clearTimeout(entry.timer);
    held.delete(key);
  };
  return {
    /** Starts `read` under `key` unless one is held there already, or the store or the owner's share is full. */
    start(owner: string, key: string, read: () => Promise<T>): void {
      if (held.has(key) || held.size >= options.maxEntries || heldBy(owner) >= options.maxEntriesPerOwner)
        return;
      const promise = read();
      const entry = { owner, promise, timer: setTimeout(() => drop(key, entry), options.ttlMs) };
      entry.timer.unref();
      held.set(key, entry);
      promise.catch(() => drop(key, entry));
    },
    /** The read held under `key`, removed from the store; undefined when none is. */
    take(key: string): Promise<T> | undefined {
      const entry = held.get(key);
      if (!entry) return undefined;
      drop(key, entry);
      return entry.promise;
    },
    /** Reads held now (in flight or done, not yet taken or expired). */
    get size(): number {
      return held.size;
    },
  };
}

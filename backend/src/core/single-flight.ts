/**
 * Request coalescing: concurrent calls with the same key share one in-flight promise. After a
 * change, every live client of a shape asks for the entries after the same offset; one query
 * answers them all. A caller that must see data committed by a given moment (it was woken by a
 * notification sent after the commit) passes `startedAfter`: it joins only a call started
 * then or later, never one that may have read before the commit.
 */
export function singleFlight<T>() {
  const inFlight = new Map<string, { startedAt: number; promise: Promise<T> }>();
  return (key: string, run: () => Promise<T>, startedAfter = Number.NEGATIVE_INFINITY): Promise<T> => {
    const pending = inFlight.get(key);
    if (pending && pending.startedAt >= startedAfter) return pending.promise;
    const entry = { startedAt: performance.now(), promise: run() };
    entry.promise
      .finally(() => {
        if (inFlight.get(key) === entry) inFlight.delete(key);
      })
      .catch(() => {});
    inFlight.set(key, entry);
    return entry.promise;
  };
}

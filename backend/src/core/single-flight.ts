/**
 * Request coalescing: concurrent calls with the same key share one in-flight promise. After a
 * change, every live client of a shape asks for the entries after the same offset; one query
 * answers them all.
 */
export function singleFlight<T>() {
  const inFlight = new Map<string, Promise<T>>();
  return (key: string, run: () => Promise<T>): Promise<T> => {
    const pending = inFlight.get(key);
    if (pending) return pending;
    const started = run().finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };
}

/**
 * Web Locks for tabs simulated in one Node process. Node 20 has no `navigator.locks`; this is
 * the exclusive-lock subset the leader election uses: FIFO per name, released when the
 * callback's promise settles, a waiting request dropped when its signal aborts.
 */
import type { LockManagerLike } from '../../../src/lib/sync/environment.ts';

export function createLockManager(): LockManagerLike {
  const queues = new Map<string, (() => void)[]>();
  const held = new Set<string>();

  const grantNext = (name: string) => {
    const next = queues.get(name)?.shift();
    if (next) next();
    else held.delete(name);
  };

  return {
    request(name, options, callback) {
      return new Promise((resolve, reject) => {
        const run = () => {
          held.add(name);
          callback()
            .then(resolve, reject)
            .finally(() => grantNext(name));
        };
        if (!held.has(name)) {
          run();
          return;
        }
        const queue = queues.get(name) ?? [];
        queues.set(name, queue);
        queue.push(run);
        options.signal?.addEventListener('abort', () => {
          const index = queue.indexOf(run);
          if (index !== -1) queue.splice(index, 1);
          reject(new DOMException('aborted', 'AbortError'));
        });
      });
    },
  };
}

/**
 * What the library takes from the browser, injectable so that Node tests (which lack Web
 * Locks, and `online`/visibility events) and other runtimes can supply their own.
 */

/** The part of the Web Locks API the leader election uses (`navigator.locks`). */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>;
}

/** The part of BroadcastChannel the tabs use to share what the leader sees. */
export interface ChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  close(): void;
}

export interface SyncEnvironment {
  /** Absent: every tab is its own leader (no other tab can exist, or the runtime lacks locks). */
  locks: LockManagerLike | undefined;
  /** Absent: tabs do not share the leader's streams (each follower sees only the outbox). */
  createChannel: ((name: string) => ChannelLike) | undefined;
  indexedDB: IDBFactory;
  IDBKeyRange: typeof IDBKeyRange;
  fetch: typeof fetch;
  isOnline(): boolean;
  /** Calls `listener` when the connection returns or the page becomes visible; returns the unsubscribe. */
  onWake(listener: () => void): () => void;
  /** Calls `listener` with the new state when the browser goes online or offline. */
  onConnectivity(listener: (online: boolean) => void): () => void;
}

export function browserEnvironment(): SyncEnvironment {
  const g = globalThis;
  const nav: (Navigator & { locks?: LockManagerLike }) | undefined = g.navigator;
  const listen = (target: EventTarget | undefined, type: string, listener: () => void) => {
    target?.addEventListener(type, listener);
    return () => target?.removeEventListener(type, listener);
  };
  const win: EventTarget | undefined = typeof window === 'undefined' ? undefined : window;
  const doc: Document | undefined = typeof document === 'undefined' ? undefined : document;
  return {
    locks: nav?.locks,
    createChannel: typeof BroadcastChannel === 'undefined' ? undefined : (name) => new BroadcastChannel(name),
    indexedDB: g.indexedDB,
    IDBKeyRange: g.IDBKeyRange,
    fetch: (...args) => g.fetch(...args),
    isOnline: () => nav?.onLine ?? true,
    onWake(listener) {
      const offOnline = listen(win, 'online', listener);
      const offVisible = listen(doc, 'visibilitychange', () => {
        if (doc?.visibilityState === 'visible') listener();
      });
      return () => {
        offOnline();
        offVisible();
      };
    },
    onConnectivity(listener) {
      const offOnline = listen(win, 'online', () => listener(true));
      const offOffline = listen(win, 'offline', () => listener(false));
      return () => {
        offOnline();
        offOffline();
      };
    },
  };
}

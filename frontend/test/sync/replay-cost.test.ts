/**
 * What a replay costs the device, counted rather than timed (counts do not move with the
 * machine's load):
 * - IndexedDB requests (and transactions) per replayed write, in fake-indexeddb while 200
 *   writes queued offline go out and are confirmed. In a browser each request and its promise
 *   continuations hold the page's main thread, which bounds how fast a replay can go there;
 * - connections: while a replay is under way the activity stream is closed, so its connection
 *   carries writes (a browser opens six per host), and the feed catches up afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newDevice,
  pageEntity,
  startSharedStack,
  switchableNetwork,
  until,
  untilAllConfirmed,
} from './support/sync-stack.ts';

const shared = startSharedStack();

/**
 * Counts every IndexedDB request and transaction made in this process while `counting`, and
 * the records that `getAll` requests brought (a re-read of the outbox and rows reads them all).
 */
function countIndexedDb() {
  const counted = { requests: 0, transactions: 0, recordsRead: 0, counting: false };
  const restore: (() => void)[] = [];
  const wrap = (prototype: object, names: string[], onCall: () => void) => {
    for (const name of names) {
      const original: unknown = Reflect.get(prototype, name);
      if (typeof original !== 'function') continue;
      Reflect.set(prototype, name, function (this: unknown, ...args: unknown[]) {
        if (!counted.counting) return Reflect.apply(original, this, args);
        onCall();
        const result: unknown = Reflect.apply(original, this, args);
        if (name === 'getAll' && result instanceof IDBRequest)
          result.addEventListener('success', () => {
            if (Array.isArray(result.result)) counted.recordsRead += result.result.length;
          });
        return result;
      });
      restore.push(() => Reflect.set(prototype, name, original));
    }
  };
  const request = () => counted.requests++;
  wrap(
    IDBObjectStore.prototype,
    [
      'add',
      'put',
      'get',
      'getKey',
      'getAll',
      'getAllKeys',
      'delete',
      'clear',
      'count',
      'openCursor',
      'openKeyCursor',
    ],
    request,
  );
  wrap(
    IDBIndex.prototype,
    ['get', 'getKey', 'getAll', 'getAllKeys', 'count', 'openCursor', 'openKeyCursor'],
    request,
  );
  wrap(IDBCursor.prototype, ['continue', 'advance', 'continuePrimaryKey', 'update', 'delete'], request);
  wrap(IDBDatabase.prototype, ['transaction'], () => counted.transactions++);
  return {
    counted,
    restore() {
      for (const undo of restore) undo();
    },
  };
}

let counter: ReturnType<typeof countIndexedDb>;
beforeAll(() => {
  counter = countIndexedDb();
});
afterAll(() => counter.restore());

const CREATES = 100;
const UPDATES = 100;

describe('replay storage', () => {
  it('replays 200 writes queued offline with at most 8 IndexedDB requests, one transaction and no re-read of the outbox per write', async () => {
    const network = switchableNetwork();
    network.offline = true;
    const sync = shared.client({ device: newDevice(), environment: { fetch: network.fetch } });
    await sync.ready;
    const ids: string[] = [];
    for (let i = 0; i < CREATES; i++) ids.push((await sync.create(pageEntity, { title: `page ${i}` })).id);
    for (const id of ids.slice(0, UPDATES)) await sync.update(pageEntity, id, { content: 'replayed' });
    const writes = CREATES + UPDATES;
    expect(sync.getSnapshot().queued).toBe(writes);

    counter.counted.requests = 0;
    counter.counted.transactions = 0;
    counter.counted.recordsRead = 0;
    counter.counted.counting = true;
    network.offline = false;
    sync.drain();
    await untilAllConfirmed(sync);
    counter.counted.counting = false;
    const perWrite = {
      requests: counter.counted.requests / writes,
      transactions: counter.counted.transactions / writes,
      recordsRead: counter.counted.recordsRead / writes,
    };
    console.log(`IndexedDB per replayed write: ${JSON.stringify(perWrite)}`);
    expect(sync.items(pageEntity).filter((item) => item.value.content === 'replayed')).toHaveLength(UPDATES);
    // each outcome stored with the others of its moment, confirmations found from memory: about
    // 6 requests and 0.2 transactions per write; one transaction per outcome made 13 and 2.5
    expect(perWrite.requests).toBeLessThanOrEqual(8);
    expect(perWrite.transactions).toBeLessThanOrEqual(1);
    // what the tab stored itself it shows from memory: re-reading the outbox and rows after
    // its own writes read about 6 records per write here (hundreds per read in a browser's replay)
    expect(perWrite.recordsRead).toBeLessThanOrEqual(2);
  });
});

describe('replay connections', () => {
  it('closes the activity stream while more than 20 writes wait, and then catches the feed up', async () => {
    const network = switchableNetwork();
    let openActivityStreams = 0;
    /** Open activity streams at each write's request, with the writes still queued then. */
    const atWrites: { open: number; queued: number }[] = [];
    let sync: ReturnType<typeof shared.client> | undefined;
    const fetchWatched: typeof fetch = async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
      if (method === 'POST' && !network.offline && sync)
        atWrites.push({ open: openActivityStreams, queued: sync.getSnapshot().queued });
      if (!url.includes('/activities/stream') || network.offline) return network.fetch(input, init);
      openActivityStreams++;
      const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
      let closed = false;
      const close = () => {
        if (!closed) openActivityStreams--;
        closed = true;
      };
      signal?.addEventListener('abort', close, { once: true });
      return network.fetch(input, init).catch((error: unknown) => {
        close();
        throw error;
      });
    };
    sync = shared.client({ device: newDevice(), environment: { fetch: fetchWatched } });
    await sync.ready;
    await until(() => openActivityStreams === 1, 10_000, 'the activity stream open');
    // the stream stays open while the writes cannot go out
    network.offline = true;
    const txIds: string[] = [];
    for (let i = 0; i < 60; i++) txIds.push((await sync.create(pageEntity, { title: `queued ${i}` })).txId);
    network.offline = false;
    sync.drain();
    await untilAllConfirmed(sync);
    const duringReplay = atWrites.filter((write) => write.queued > 20);
    expect(duringReplay.length).toBeGreaterThan(0);
    expect(duringReplay.filter((write) => write.open > 0)).toEqual([]);
    // afterwards the feed resumes where it stopped and shows every create
    await until(
      () => txIds.every((txId) => sync.getSnapshot().activities.some((a) => a.transactionId === txId)),
      15_000,
      'the feed caught up',
    );
    expect(openActivityStreams).toBe(1);
  });
});

/**
 * What a replay asks of IndexedDB: the requests (and transactions) per replayed write, counted
 * in fake-indexeddb while 200 writes queued offline go out and are confirmed. In a browser
 * each request and its promise continuations hold the page's main thread, so their number
 * bounds how fast a replay can go there; counts, unlike times, do not move with the machine's load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  newDevice,
  pageEntity,
  startSharedStack,
  statusCounts,
  switchableNetwork,
  until,
} from './support/sync-stack.ts';

const shared = startSharedStack();

/** Counts every IndexedDB request and transaction made in this process while `counting`. */
function countIndexedDb() {
  const counted = { requests: 0, transactions: 0, counting: false };
  const restore: (() => void)[] = [];
  const wrap = (prototype: object, names: string[], onCall: () => void) => {
    for (const name of names) {
      const original: unknown = Reflect.get(prototype, name);
      if (typeof original !== 'function') continue;
      Reflect.set(prototype, name, function (this: unknown, ...args: unknown[]) {
        if (counted.counting) onCall();
        return Reflect.apply(original, this, args);
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
  it('replays 200 writes queued offline with at most 8 IndexedDB requests and one transaction per write', async () => {
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
    counter.counted.counting = true;
    network.offline = false;
    sync.drain();
    await until(
      () => sync.getSnapshot().outbox.every((entry) => entry.status === 'confirmed'),
      30_000,
      'all confirmed',
      () => statusCounts(sync),
    );
    counter.counted.counting = false;
    const perWrite = {
      requests: counter.counted.requests / writes,
      transactions: counter.counted.transactions / writes,
    };
    console.log(`IndexedDB per replayed write: ${JSON.stringify(perWrite)}`);
    expect(sync.items(pageEntity).filter((item) => item.value.content === 'replayed')).toHaveLength(UPDATES);
    // each outcome stored with the others of its moment, confirmations found from memory: about
    // 6 requests and 0.2 transactions per write; one transaction per outcome made 13 and 2.5
    expect(perWrite.requests).toBeLessThanOrEqual(8);
    expect(perWrite.transactions).toBeLessThanOrEqual(1);
  });
});

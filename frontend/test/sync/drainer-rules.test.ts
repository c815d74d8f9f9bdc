/**
 * The drainer's rules on the real stack, with faults injected in the network only: sequence
 * order, retries with the original transaction id, a failing entity blocking only its own later
 * writes, the outbox schema surviving an upgrade, and undo as a queued transaction.
 */
import { Dexie } from 'dexie';
import { describe, expect, it } from 'vitest';
import type { OutboxEntry } from '../../src/lib/sync/index.ts';
import {
  newDevice,
  type openClient,
  pageEntity,
  startSharedStack,
  switchableNetwork,
  until,
} from './support/sync-stack.ts';

const shared = startSharedStack();

const client = (options: Parameters<typeof openClient>[2]) => shared.client(options);

const writes = (network: ReturnType<typeof switchableNetwork>) =>
  network.log.filter((request) => request.method !== 'GET');

describe('drainer', () => {
  it('sends one entity’s writes in sequence order, each with its own id and the version before it', async () => {
    const network = switchableNetwork();
    network.offline = true;
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { id, txId: created } = await sync.create(pageEntity, { title: 't0' });
    const updates: string[] = [];
    for (let i = 1; i <= 5; i++) updates.push((await sync.update(pageEntity, id, { title: `t${i}` })).txId);
    network.offline = false;
    sync.drain();
    await sync.waitFor(updates.at(-1) as string, ['confirmed']);
    const sent = writes(network).filter((request) => request.path.includes(id) || request.method === 'POST');
    expect(sent.map((request) => request.headers.get('x-transaction-id'))).toEqual([created, ...updates]);
    expect(sent.slice(1).map((request) => request.headers.get('x-expected-transaction-id'))).toEqual([
      created,
      ...updates.slice(0, -1),
    ]);
    expect(sent.every((request) => request.headers.get('x-client-id') === sync.clientId)).toBe(true);
  });

  it('retries a write whose request failed with the same transaction id until it applies', async () => {
    const network = switchableNetwork();
    let failures = 0;
    network.respond = (url, init) =>
      init.method === 'POST' && url.endsWith('/pages') && failures++ < 2
        ? Response.json({ error: 'unavailable', code: 'UNAVAILABLE', message: 'try later' }, { status: 503 })
        : undefined;
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { txId } = await sync.create(pageEntity, { title: 'after two 503s' });
    const confirmed = await sync.waitFor(txId, ['confirmed'], 20_000);
    expect(confirmed.retries).toBe(2);
    const posts = writes(network).map((request) => request.headers.get('x-transaction-id'));
    expect(posts).toEqual([txId, txId, txId]);
  });

  it('blocks only the later writes of an entity whose write keeps failing, never the rest of the queue', async () => {
    const network = switchableNetwork();
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { id: stuck, txId: stuckCreate } = await sync.create(pageEntity, { title: 'stuck' });
    await sync.waitFor(stuckCreate, ['confirmed']);
    network.respond = (url, init) =>
      init.method === 'PATCH' && url.includes(stuck)
        ? Response.json({ error: 'unavailable', code: 'UNAVAILABLE', message: 'down' }, { status: 503 })
        : undefined;
    const { txId: first } = await sync.update(pageEntity, stuck, { title: 'stuck 1' });
    const { txId: second } = await sync.update(pageEntity, stuck, { title: 'stuck 2' });
    const others = [];
    for (let i = 0; i < 5; i++) others.push((await sync.create(pageEntity, { title: `free ${i}` })).txId);
    for (const txId of others) await sync.waitFor(txId, ['confirmed']);
    expect(sync.transaction(first)?.status).toBe('pending');
    expect(sync.transaction(first)?.retries).toBeGreaterThan(0);
    expect(sync.transaction(second)?.status).toBe('pending');
    expect(writes(network).filter((request) => request.headers.get('x-transaction-id') === second)).toEqual(
      [],
    );

    network.respond = undefined;
    sync.drain();
    await sync.waitFor(second, ['confirmed'], 20_000);
    expect(sync.items(pageEntity).find((item) => item.id === stuck)?.value.title).toBe('stuck 2');
  });

  it('keeps the changes an older release queued when a newer schema opens the database', async () => {
    const device = newDevice();
    // the outbox as release 1 wrote it: schema version 1, one create queued
    const old = new Dexie('sync', device);
    old.version(1).stores({
      transactions: '++seq, &txId, organization, [organization+entityType+entityId]',
      meta: 'key',
    });
    const queued: Omit<OutboxEntry, 'seq'> = {
      txId: 'v1queued-abcdefghijkl',
      organization: shared.member.org.slug,
      entityType: 'page',
      entityId: 'queued-by-release-1',
      action: 'create',
      payload: { title: 'from release 1' },
      expectedVersion: null,
      status: 'pending',
      retries: 0,
      nextAttemptAt: 0,
      lastError: null,
      serverVersion: null,
      serverTxid: null,
      undoOf: null,
      replaces: null,
      cascadedFrom: null,
      clientId: 'client_release_1',
      tabId: 'tab_release_1',
      createdAt: Date.now(),
      sentAt: null,
      settledAt: null,
    };
    await old.table('transactions').add(queued);
    old.close();

    const sync = client({ device });
    await sync.waitFor(queued.txId, ['confirmed']);
    expect(sync.items(pageEntity).find((item) => item.id === 'queued-by-release-1')?.value.title).toBe(
      'from release 1',
    );
  });
});

describe('undo', () => {
  it('queues an undo as its own transaction and replays it to the undo endpoint', async () => {
    const network = switchableNetwork();
    const undone: { path: string; txId: string | null }[] = [];
    // stands in for the undo endpoint, to see exactly which request the drainer sends
    network.respond = (url, init, request) => {
      if (init.method !== 'POST' || !url.endsWith('/undo')) return undefined;
      undone.push({ path: new URL(url).pathname, txId: request?.headers.get('x-transaction-id') ?? null });
      return Response.json({ id: 'p' }, { status: 200 });
    };
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { id, txId: deleted } = await sync.create(pageEntity, { title: 'to undo' });
    await sync.waitFor(deleted, ['confirmed']);
    const { txId: removal } = await sync.remove(pageEntity, id);
    await sync.waitFor(removal, ['confirmed']);

    network.offline = true;
    const { txId: undo } = await sync.undo(removal);
    expect(sync.transaction(undo)).toMatchObject({
      action: 'undo',
      undoOf: removal,
      status: 'pending',
      entityId: id,
    });
    network.offline = false;
    sync.drain();
    await sync.waitFor(undo, ['sent', 'confirmed'], 20_000);
    expect(undone).toEqual([
      { path: `/api/organizations/${shared.member.org.slug}/transactions/${removal}/undo`, txId: undo },
    ]);
  });

  it('turns a 409 of the undo endpoint into a conflict', async () => {
    const network = switchableNetwork();
    network.respond = (url, init) =>
      init.method === 'POST' && url.endsWith('/undo')
        ? Response.json(
            {
              error: 'conflict',
              code: 'TRANSACTION_CONFLICT',
              message: 'changed since',
              serverVersion: { id: 'x' },
            },
            { status: 409 },
          )
        : undefined;
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { txId: created } = await sync.create(pageEntity, { title: 'changed since' });
    await sync.waitFor(created, ['confirmed']);
    const { txId: undo } = await sync.undo(created);
    const entry = await sync.waitFor(undo, ['conflict']);
    expect(entry.serverVersion).toEqual({ id: 'x' });
  });
});

it('sends nothing while the browser says it is offline, and what was queued then without status checks', async () => {
  const network = switchableNetwork();
  network.offline = true;
  let browserOnline = false;
  const connectivity = new Set<(online: boolean) => void>();
  let writesTriedOffline = 0;
  const sync = client({
    device: newDevice(),
    environment: {
      fetch: (input, init) => {
        const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
        if (network.offline && method !== 'GET') writesTriedOffline++;
        return network.fetch(input, init);
      },
      isOnline: () => browserOnline,
      onConnectivity(listener) {
        connectivity.add(listener);
        return () => connectivity.delete(listener);
      },
    },
  });
  const txIds: string[] = [];
  for (let i = 0; i < 20; i++)
    txIds.push((await sync.create(pageEntity, { title: `made offline ${i}` })).txId);
  await sync.update(pageEntity, (await sync.create(pageEntity, { title: 'edited offline' })).id, {
    title: 'edited offline, twice',
  });
  network.offline = false;
  browserOnline = true;
  for (const listener of connectivity) listener(true);
  for (const txId of txIds) await sync.waitFor(txId, ['confirmed'], 20_000);
  await until(() => sync.getSnapshot().queued === 0, 15_000, 'drained');
  expect(writesTriedOffline).toBe(0);
  // a write that never left the device has no lost answer to ask the status endpoint about
  expect(network.log.filter((request) => request.path.includes('/transactions/'))).toEqual([]);
  expect(sync.getSnapshot().outbox.every((entry) => entry.retries === 0)).toBe(true);
});

it('reports offline when the API cannot be reached and online when it answers again', async () => {
  const network = switchableNetwork();
  network.offline = true;
  const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
  await sync.create(pageEntity, { title: 'offline' });
  await until(() => !sync.getSnapshot().online, 10_000, 'offline');
  network.offline = false;
  sync.drain();
  await until(() => sync.getSnapshot().online && sync.getSnapshot().queued === 0, 15_000, 'online, drained');
});

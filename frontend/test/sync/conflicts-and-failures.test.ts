/**
 * A 409 becomes a conflict for a person (keep mine / take theirs), any other 4xx a failed
 * write that is rolled back with its reason, and a transaction whose stream message never
 * arrives is settled by the status endpoint.
 */
import { IDBDatabase } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { SyncClient } from '../../src/lib/sync/index.ts';
import {
  attachmentEntity,
  newDevice,
  type openClient,
  pageEntity,
  startSharedStack,
  switchableNetwork,
  until,
} from './support/sync-stack.ts';

const shared = startSharedStack();

const client = (options?: Parameters<typeof openClient>[2]) => shared.client(options);

const page = (sync: SyncClient, id: string) => sync.items(pageEntity).find((item) => item.id === id);

async function serverPage(id: string) {
  const res = await shared.stack.client.request(
    'GET',
    `/api/organizations/${shared.member.org.slug}/pages/${id}`,
    {
      token: shared.member.token,
    },
  );
  return res.body;
}

/** Alice creates a page both see; Bob changes it while Alice's edit is still offline. */
async function conflictingEdits() {
  const aliceNetwork = switchableNetwork();
  const alice = client({ device: newDevice(), environment: { fetch: aliceNetwork.fetch } });
  const bob = client();
  const { id, txId: created } = await alice.create(pageEntity, { title: 'Plan', content: 'v1' });
  await alice.waitFor(created, ['confirmed']);
  await until(() => page(bob, id)?.value.title === 'Plan', 15_000, 'bob sees the page');

  aliceNetwork.offline = true;
  const { txId: mine } = await alice.update(pageEntity, id, { title: 'Alice title' });
  const { txId: theirs } = await bob.update(pageEntity, id, { title: 'Bob title' });
  await bob.waitFor(theirs, ['confirmed']);
  aliceNetwork.offline = false;
  alice.drain();
  const entry = await alice.waitFor(mine, ['conflict']);
  return { alice, bob, id, mine, theirs, entry };
}

describe('conflicts', () => {
  it('turns an edit of a version changed by another client into a conflict with both versions', async () => {
    const { alice, id, mine, entry } = await conflictingEdits();
    expect(entry.lastError?.code).toBe('TRANSACTION_CONFLICT');
    const conflict = alice.getSnapshot().conflicts.find((c) => c.entry.txId === mine);
    expect(conflict?.mine?.title).toBe('Alice title');
    expect(conflict?.theirs?.title).toBe('Bob title');
    // the person's edit is not rolled back while they decide
    expect(page(alice, id)?.value.title).toBe('Alice title');
    expect(page(alice, id)?.status).toBe('conflict');
  });

  it('keepMine re-sends the same values against the server version; both clients end on them', async () => {
    const { alice, bob, id, mine, theirs } = await conflictingEdits();
    const { txId: resent } = await alice.keepMine(mine);
    expect(resent).not.toBe(mine);
    await alice.waitFor(resent, ['confirmed']);
    const server = await serverPage(id);
    expect(server.title).toBe('Alice title');
    expect(server.transactions.update).toBe(resent);
    expect(alice.transaction(resent)?.expectedVersion).toBe(theirs);
    await until(() => page(bob, id)?.value.title === 'Alice title', 15_000, 'bob sees alice');
    expect(page(alice, id)?.value.title).toBe('Alice title');
    expect(alice.getSnapshot().conflicts).toEqual([]);
  });

  it('takeTheirs drops the local change; both clients end on the server row', async () => {
    const { alice, bob, id, mine } = await conflictingEdits();
    await alice.takeTheirs(mine);
    await until(() => page(alice, id)?.value.title === 'Bob title', 5_000, 'alice shows theirs');
    expect(alice.transaction(mine)).toBeUndefined();
    expect((await serverPage(id)).title).toBe('Bob title');
    expect(page(bob, id)?.value.title).toBe('Bob title');
    expect(alice.getSnapshot().conflicts).toEqual([]);
  });
});

describe('rejected writes', () => {
  it('fails a permanently rejected write, rolls it back, keeps the reason, and sends later writes', async () => {
    const sync = client();
    const { id, txId: created } = await sync.create(pageEntity, { title: 'Keep', content: 'ok' });
    await sync.waitFor(created, ['confirmed']);
    const { txId: rejected } = await sync.update(pageEntity, id, { title: 'x'.repeat(5_000) });
    const { txId: later } = await sync.update(pageEntity, id, { content: 'still saved' });
    const { id: other, txId: otherCreate } = await sync.create(pageEntity, { title: 'Other' });

    const failed = await sync.waitFor(rejected, ['failed']);
    expect(failed.lastError?.status).toBe(400);
    expect(failed.lastError?.code).toBe('VALIDATION_FAILED');
    expect(sync.getSnapshot().failed.map((f) => f.entry.txId)).toEqual([rejected]);
    expect(sync.getSnapshot().failed[0]?.reason).toBe(failed.lastError?.message);

    await sync.waitFor(later, ['confirmed']);
    await sync.waitFor(otherCreate, ['confirmed']);
    const server = await serverPage(id);
    expect(server.title).toBe('Keep');
    expect(server.content).toBe('still saved');
    expect(page(sync, id)?.value).toMatchObject({ title: 'Keep', content: 'still saved' });
    expect(page(sync, other)?.value.title).toBe('Other');

    await sync.dismiss(rejected);
    await until(() => sync.getSnapshot().failed.length === 0, 5_000, 'dismissed');
  });

  it('fails the queued updates and deletes of an entity whose create failed, together', async () => {
    const sync = client();
    const { id, txId: badCreate } = await sync.create(pageEntity, { title: '' });
    const { txId: update } = await sync.update(pageEntity, id, { title: 'fixed' });
    const { txId: remove } = await sync.remove(pageEntity, id);
    await sync.waitFor(badCreate, ['failed']);
    const cascaded = await sync.waitFor(update, ['failed']);
    expect(cascaded.cascadedFrom).toBe(badCreate);
    expect((await sync.waitFor(remove, ['failed'])).cascadedFrom).toBe(badCreate);
    expect(page(sync, id)).toBeUndefined();
    expect(sync.getSnapshot().failed.map((f) => [f.entry.txId, f.cascadedFrom])).toEqual([
      [badCreate, null],
      [update, badCreate],
      [remove, badCreate],
    ]);
    await sync.dismiss(badCreate);
    await until(() => sync.getSnapshot().failed.length === 0, 5_000, 'dismissed with its cascade');
  });
});

describe('confirmation always terminates', () => {
  it('settles a transaction whose stream message was missed through the status endpoint', async () => {
    const network = switchableNetwork();
    // the shape stream's answers never arrive; writes and the status endpoint still work
    network.drop = (url) => (url.includes('/shapes/') ? 'before' : undefined);
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch }, confirmAfterMs: 500 });
    const { id, txId } = await sync.create(pageEntity, { title: 'Unseen on the stream' });
    const entry = await sync.waitFor(txId, ['confirmed'], 20_000);
    expect(entry.status).toBe('confirmed');
    const statusChecks = [...network.byKind].filter(
      ([kind]) => kind.startsWith('GET') && kind.includes('/transactions/'),
    );
    expect(statusChecks.length).toBeGreaterThan(0);
    // the row came from the REST answer, so the item shows the server's fields
    await until(() => page(sync, id)?.value.createdAt !== undefined, 5_000, 'server row');
  });

  it('settles a write whose response was lost by the status endpoint, without applying it twice', async () => {
    const network = switchableNetwork();
    let lost = 0;
    network.drop = (url, init) =>
      init?.method === 'POST' && url.endsWith('/pages') && lost++ === 0 ? 'after' : undefined;
    const sync = client({ device: newDevice(), environment: { fetch: network.fetch } });
    const { txId } = await sync.create(pageEntity, { title: 'Lost answer' });
    await sync.waitFor(txId, ['confirmed'], 20_000);
    const activities = async () =>
      (
        await shared.stack.client.request(
          'GET',
          `/api/organizations/${shared.member.org.slug}/activities?transactionId=${txId}`,
          {
            token: shared.member.token,
          },
        )
      ).body.items as unknown[];
    await until(async () => (await activities()).length > 0, 10_000, 'the activity');
    expect(await activities()).toHaveLength(1);
    const titled = sync.items(pageEntity).filter((item) => item.value.title === 'Lost answer');
    expect(titled).toHaveLength(1);
  });
});

describe('a shape batch the device cannot store', () => {
  it('reads the shape again instead of losing the batch or throwing at the page', async () => {
    // the browser aborts the device's next write of rows (storage full, the tab closing): the
    // platform fails, so the fault is injected there (Dexie binds it when the database opens)
    const transaction = IDBDatabase.prototype.transaction;
    let armed = false;
    let aborted = 0;
    IDBDatabase.prototype.transaction = function (names, mode, ...rest) {
      if (armed && mode === 'readwrite' && [names].flat().includes('rows')) {
        armed = false;
        aborted += 1;
        throw new DOMException('The transaction was aborted', 'AbortError');
      }
      return transaction.call(this, names, mode, ...rest);
    };
    try {
      const sync = client();
      const first = await sync.create(pageEntity, { title: 'Before the failure' });
      await sync.waitFor(first.txId, ['confirmed']);
      armed = true;
      // written by another device, over REST, so only the stream's batch writes rows here
      const created = await shared.stack.client.request(
        'POST',
        `/api/organizations/${shared.member.org.slug}/pages`,
        {
          token: shared.member.token,
          headers: {
            'x-transaction-id': `${Date.now().toString(36)}-storedlater1`,
            'x-client-id': 'other-device',
          },
          body: { title: 'After the failure' },
        },
      );
      expect(created.status).toBe(201);
      await until(() => aborted === 1, 10_000, 'the aborted write');
      await until(() => page(sync, created.body.id) !== undefined, 15_000, 'the page after the failed batch');
      expect(page(sync, first.id)?.status).toBe('confirmed');
    } finally {
      IDBDatabase.prototype.transaction = transaction;
    }
  });
});

describe('one factory for every entity', () => {
  it('queues, sends and confirms pages and attachments through the same path', async () => {
    const sync = client();
    const { id: pageId, txId: pageTx } = await sync.create(pageEntity, { title: 'With attachment' });
    const { id, txId } = await sync.create(attachmentEntity, {
      pageId,
      filename: 'plan.pdf',
      contentType: 'application/pdf',
      size: 1234,
      url: 'https://example.com/plan.pdf',
    });
    await sync.waitFor(pageTx, ['confirmed']);
    await sync.waitFor(txId, ['confirmed']);
    const { txId: renamed } = await sync.update(attachmentEntity, id, { filename: 'plan-v2.pdf' });
    await sync.waitFor(renamed, ['confirmed']);
    expect(sync.items(attachmentEntity).find((item) => item.id === id)?.value).toMatchObject({
      pageId,
      filename: 'plan-v2.pdf',
    });
  });
});

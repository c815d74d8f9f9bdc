/**
 * Undo through the library against the real API, CDC worker and PostgreSQL: the undo of a
 * create, an update and a delete each reach `confirmed` from the shape stream and leave the
 * server and the device on the same row; an undo the server cannot record yet is retried; an
 * undo of a version someone changed since is a conflict the person resolves.
 */
import { startCdcWorker } from '@sync/cdc/worker';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { SyncClient } from '../../src/lib/sync/index.ts';
import {
  type Member,
  newDevice,
  pageEntity,
  startSharedStack,
  startTestStack,
  type TestStack,
  until,
} from './support/sync-stack.ts';

const shared = startSharedStack();

const client = (on: TestStack = shared.stack, who: Member = shared.member) =>
  shared.client({ device: newDevice(), confirmAfterMs: 60_000 }, on, who);

const page = (sync: SyncClient, id: string) => sync.items(pageEntity).find((item) => item.id === id);

async function serverPage(id: string, on: TestStack = shared.stack, who: Member = shared.member) {
  return on.client.request('GET', `/api/organizations/${who.org.slug}/pages/${id}`, { token: who.token });
}

/** The undo's activity, found by the transaction it undid. */
async function undoActivities(undone: string) {
  const res = await shared.stack.client.request(
    'GET',
    `/api/organizations/${shared.member.org.slug}/activities?undoesTransactionId=${undone}`,
    { token: shared.member.token },
  );
  return res.body.items as { transactionId: string; type: string }[];
}

describe('undo through the sync library', () => {
  it('undoes a create: the page leaves the device and the server, confirmed by the stream', async () => {
    // status checks only after a minute: `confirmed` here comes from the shape stream
    const sync = client();
    const { id, txId: created } = await sync.create(pageEntity, { title: 'Created by mistake' });
    await sync.waitFor(created, ['confirmed']);
    const { txId: undo } = await sync.undo(created);
    expect(sync.transaction(undo)).toMatchObject({ action: 'undo', undoOf: created, entityId: id });
    await sync.waitFor(undo, ['confirmed'], 15_000);
    expect(page(sync, id)).toBeUndefined();
    expect((await serverPage(id)).status).toBe(404);
    expect(await undoActivities(created)).toMatchObject([{ transactionId: undo, type: 'page.deleted' }]);
  });

  it('undoes an update: the changed keys go back, the others stay', async () => {
    const sync = client();
    const { id, txId: created } = await sync.create(pageEntity, { title: 'Plan', content: 'first' });
    await sync.waitFor(created, ['confirmed']);
    const { txId: edited } = await sync.update(pageEntity, id, { title: 'Plan, renamed' });
    await sync.waitFor(edited, ['confirmed']);
    const { txId: undo } = await sync.undo(edited);
    await sync.waitFor(undo, ['confirmed'], 15_000);
    expect(page(sync, id)?.value).toMatchObject({ title: 'Plan', content: 'first' });
    expect(page(sync, id)?.value.transactions.update).toBe(undo);
    expect((await serverPage(id)).body).toMatchObject({ title: 'Plan', content: 'first' });
    expect(await undoActivities(edited)).toMatchObject([{ transactionId: undo, type: 'page.updated' }]);
  });

  it('undoes a delete: the restore enters the shape as an insert and confirms the undo', async () => {
    const sync = client();
    const other = client();
    const { id, txId: created } = await sync.create(pageEntity, { title: 'Deleted by mistake' });
    await sync.waitFor(created, ['confirmed']);
    const { txId: deleted } = await sync.remove(pageEntity, id);
    await sync.waitFor(deleted, ['confirmed']);
    await until(() => page(other, id) === undefined, 15_000, 'the other device sees the delete');
    const { txId: undo } = await sync.undo(deleted);
    await sync.waitFor(undo, ['confirmed'], 15_000);
    expect(page(sync, id)?.value).toMatchObject({ title: 'Deleted by mistake', deletedAt: null });
    expect(page(sync, id)?.status).toBe('confirmed');
    await until(() => page(other, id)?.value.title === 'Deleted by mistake', 15_000, 'the other device too');
    const res = await serverPage(id);
    expect(res.status).toBe(200);
    expect(res.body.transactions.update).toBe(undo);
  });
});

describe('an undo the server cannot apply as asked', () => {
  it('becomes a conflict when the page changed since; take theirs drops it', async () => {
    const alice = client();
    const bob = client();
    const { id, txId: created } = await alice.create(pageEntity, { title: 'Shared' });
    await alice.waitFor(created, ['confirmed']);
    const { txId: aliceEdit } = await alice.update(pageEntity, id, { title: 'Alice was here' });
    await alice.waitFor(aliceEdit, ['confirmed']);
    await until(() => page(bob, id)?.value.title === 'Alice was here', 15_000, 'bob sees the edit');
    const { txId: bobEdit } = await bob.update(pageEntity, id, { content: 'Bob wrote this' });
    await bob.waitFor(bobEdit, ['confirmed']);

    const { txId: undo } = await alice.undo(aliceEdit);
    const entry = await alice.waitFor(undo, ['conflict'], 15_000);
    expect(entry.lastError?.code).toBe('TRANSACTION_CONFLICT');
    expect(entry.serverVersion).toMatchObject({ title: 'Alice was here', content: 'Bob wrote this' });
    const conflict = alice.getSnapshot().conflicts.find((c) => c.entry.txId === undo);
    expect(conflict?.theirs).toMatchObject({ content: 'Bob wrote this' });
    expect(conflict?.mine).toMatchObject({ title: 'Shared', content: 'Bob wrote this' });

    await alice.takeTheirs(undo);
    await until(() => alice.transaction(undo) === undefined, 10_000, 'the undo dropped');
    await until(() => page(alice, id)?.value.content === 'Bob wrote this', 15_000, 'their version shown');
    expect((await serverPage(id)).body).toMatchObject({ title: 'Alice was here', content: 'Bob wrote this' });
  });

  it('keep mine applies the undo’s values over the version that won', async () => {
    const alice = client();
    const bob = client();
    const { id, txId: created } = await alice.create(pageEntity, { title: 'Draft' });
    await alice.waitFor(created, ['confirmed']);
    const { txId: aliceEdit } = await alice.update(pageEntity, id, { title: 'Final' });
    await alice.waitFor(aliceEdit, ['confirmed']);
    await until(() => page(bob, id)?.value.title === 'Final', 15_000, 'bob sees the edit');
    const { txId: bobEdit } = await bob.update(pageEntity, id, { content: 'notes' });
    await bob.waitFor(bobEdit, ['confirmed']);

    const { txId: undo } = await alice.undo(aliceEdit);
    await alice.waitFor(undo, ['conflict'], 15_000);
    const { txId: resent } = await alice.keepMine(undo);
    await alice.waitFor(resent, ['confirmed'], 15_000);
    expect((await serverPage(id)).body).toMatchObject({ title: 'Draft', content: 'notes' });
    await until(() => page(bob, id)?.value.title === 'Draft', 15_000, 'bob sees the undo');
    expect(page(alice, id)?.value).toMatchObject({ title: 'Draft', content: 'notes' });
  });

  it('retries an undo of a transaction the worker has not recorded yet, and applies it once recorded', async () => {
    // a stack whose worker starts late, and an API that waits only 100 ms for the record
    const late = await startTestStack({ config: { undoRecordWaitMs: 100 } });
    try {
      const who = await late.client.newMember();
      const sync = client(late, who);
      const { id, txId: created } = await sync.create(pageEntity, { title: 'Not recorded yet' });
      // applied on the server; the shape's first snapshot may already confirm it (the
      // transactions column), which needs no worker
      await sync.waitFor(created, ['sent', 'confirmed'], 15_000);
      const { txId: undo } = await sync.undo(created);
      await until(
        () => sync.transaction(undo)?.lastError?.code === 'TRANSACTION_NOT_RECORDED',
        15_000,
        'the server answered "not recorded yet"',
      );
      expect(sync.transaction(undo)?.status).toBe('pending');
      const worker = startCdcWorker({ databaseUrl: late.cluster.url, logger: pino({ level: 'silent' }) });
      try {
        await sync.waitFor(undo, ['confirmed'], 30_000);
        expect((await serverPage(id, late, who)).status).toBe(404);
      } finally {
        await sync.close();
        await worker.stop();
      }
    } finally {
      await late.stop();
    }
  });
});

/**
 * What postgres.js (patched, see README "postgres.js is patched") does when the backend of a
 * transaction goes away while its callback is still running, and the pool's connection object
 * is then reconnected for other work. The worker's exactly-once (cdc_state moves only with its
 * rows) and the API's "nothing half-written" rest on it: a batch whose connection died at a
 * database restart went on, once the pool had reconnected, with its count changes and its
 * cdc_state update on the new connection, outside any transaction, while its COPY rows went
 * nowhere; the activities of that batch were lost.
 *
 * A pool of one connection makes the reuse certain: the next query reconnects the very
 * connection object the transaction was bound to. The third test is a connection lost while it
 * is being set up (the array types it reads first), which raised an unhandled rejection: the
 * end of a Node process. The last is a pool ended while a connection waited to reconnect,
 * which connected anyway once its back-off ran out.
 */

import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startTcpProxy } from './support/tcp-proxy.ts';

let cluster: EmbeddedCluster;
let admin: postgres.Sql;
let pool: postgres.Sql;

beforeAll(async () => {
  cluster = await startTestDatabase();
  admin = postgres(cluster.url, { onnotice: () => {}, max: 1 });
  await admin`create table loss_probe (id text primary key)`;
});

beforeEach(async () => {
  await admin`truncate loss_probe`;
  await pool?.end({ timeout: 1 });
  pool = postgres(cluster.url, { onnotice: () => {}, max: 1 });
});

afterAll(async () => {
  await pool?.end({ timeout: 1 });
  await admin?.end({ timeout: 1 });
  await cluster?.destroy();
});

/** A promise and the function that resolves it: the test decides when the callback goes on. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

async function rows(): Promise<string[]> {
  return (await admin<{ id: string }[]>`select id from loss_probe order by id`).map((r) => r.id);
}

it('rejects the later statements of a transaction whose connection died, even after the pool reconnected', async () => {
  const resume = gate();
  let later: unknown = null;
  const transaction = pool.begin(async (tx) => {
    await tx`insert into loss_probe values ('before')`;
    const [backend] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await admin`select pg_terminate_backend(${backend?.pid ?? 0})`;
    await resume.opened;
    try {
      await tx`insert into loss_probe values ('after')`;
    } catch (error) {
      later = error;
      throw error;
    }
  });
  await expect(transaction).rejects.toThrow();

  // the same connection object serves the pool again, on a new backend
  expect(await pool`select 1 as one`).toEqual([{ one: 1 }]);
  resume.open();
  await expect.poll(() => later).not.toBeNull();
  expect(String(later)).toMatch(/CONNECTION_CLOSED|terminating connection/);
  expect(await rows()).toEqual([]);
  // and the pool still works for everyone else
  await pool`insert into loss_probe values ('next')`;
  expect(await rows()).toEqual(['next']);
});

it('never writes the rows of a COPY whose connection died to the connection that replaced it', async () => {
  const resume = gate();
  let copyError: unknown = null;
  let lateWrite: 'pending' | 'written' | 'refused' = 'pending';
  const transaction = pool.begin(async (tx) => {
    const copy = await tx`copy loss_probe (id) from stdin`.writable();
    copy.on('error', (error) => {
      copyError = error;
    });
    copy.write('first\n');
    const [backend] = await admin<{ pid: number }[]>`
      select pid from pg_stat_activity where query like 'copy loss_probe%' and pid <> pg_backend_pid()`;
    await admin`select pg_terminate_backend(${backend?.pid ?? 0})`;
    await resume.opened;
    lateWrite = await new Promise((resolve) => {
      if (copy.destroyed) return resolve('refused');
      copy.write('second\n', (error) => resolve(error ? 'refused' : 'written'));
    });
    copy.end();
    await tx`insert into loss_probe values ('after copy')`;
  });
  await expect(transaction).rejects.toThrow();

  // the same connection object serves the pool again, on a new backend
  expect(await pool`select 1 as one`).toEqual([{ one: 1 }]);
  resume.open();
  await expect.poll(() => lateWrite).not.toBe('pending');
  expect(lateWrite).toBe('refused');
  expect(copyError).not.toBeNull();
  // a stray COPY message on the new backend would fail this query or leave rows behind
  expect(await pool`select 2 as two`).toEqual([{ two: 2 }]);
  expect(await rows()).toEqual([]);
});

/**
 * A proxy in front of the test database that cuts the first connection whose client sends the
 * driver's array-types query (sent on every new connection), before the server answers it, and
 * then refuses connections for a moment: a database going away just after a connection was set
 * up, as at a restart.
 */
const REFUSED_MS = 300;

async function cutAtFirstTypesQuery(): Promise<{
  url: string;
  cut: Promise<void>;
  close: () => Promise<void>;
}> {
  let cutOnce = () => {};
  const cut = new Promise<void>((resolve) => {
    cutOnce = resolve;
  });
  let armed = true;
  const proxy = await startTcpProxy(cluster.url, (client, upstream) => {
    client.on('data', (data) => {
      if (armed && data.includes("typcategory = 'A'")) {
        armed = false;
        proxy.server.close();
        client.destroy();
        setTimeout(() => proxy.server.listen(proxy.port, '127.0.0.1', cutOnce), REFUSED_MS);
        return;
      }
      upstream.write(data);
    });
    upstream.on('data', (data) => client.write(data));
  });
  return { url: proxy.url, cut, close: proxy.close };
}

it('raises no unhandled rejection when a new connection is lost while it reads the array types', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const proxy = await cutAtFirstTypesQuery();
  const client = postgres(proxy.url, { onnotice: () => {}, max: 1, backoff: () => 0.05 });
  try {
    // the query that opened the connection fails with it (or with the refused reconnect), or
    // runs on the next one
    const first = await client`select 1 as one`.then(
      (result) => result[0]?.one,
      (error: { code?: string }) => error.code,
    );
    await proxy.cut;
    expect([1, 'CONNECTION_CLOSED', 'ECONNREFUSED']).toContain(first);
    const [row] = await client<{ one: number }[]>`select 1 as one`;
    expect(row?.one).toBe(1);
    // an unhandled rejection is reported once the microtasks have run
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await client.end({ timeout: 1 });
    await proxy.close();
  }
});

it('connects no more once ended while a connection waited to reconnect', async () => {
  let accepted = 0;
  const proxy = await startTcpProxy(cluster.url, (client, upstream) => {
    accepted++;
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const name = 'ended-in-back-off';
  const client = postgres(proxy.url, {
    onnotice: () => {},
    max: 1,
    backoff: () => 0.5,
    connection: { application_name: name },
  });
  try {
    await client`select 1`;
    // the server goes away: the connection is cut, and new ones are refused
    proxy.server.close();
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`;
    // a query on the cut connection fails with it; the next ones find connecting refused
    const failures: (string | undefined)[] = [];
    while (failures.at(-1) !== 'ECONNREFUSED' && failures.length < 5)
      failures.push(
        await client`select 1`.then(
          () => 'answered',
          (error: { code?: string }) => error.code,
        ),
      );
    expect(failures.at(-1)).toBe('ECONNREFUSED');
    // the next query waits for the back-off; the pool is ended meanwhile
    const waiting = client`select 1`.catch((error: { code?: string }) => error.code);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.end({ timeout: 0.1 });
    expect(await waiting).toBe('CONNECTION_DESTROYED');

    await new Promise<void>((resolve) => proxy.server.listen(proxy.port, '127.0.0.1', resolve));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(accepted).toBe(1);
    expect(await admin`select pid from pg_stat_activity where application_name = ${name}`).toEqual([]);
  } finally {
    await proxy.close();
  }
});

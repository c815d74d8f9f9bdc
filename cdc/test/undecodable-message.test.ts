/**
 * A replication message the worker cannot read: a real server never sends one, so a proxy in
 * front of it (support/replication-proxy.ts) replaces one real insert by a crafted message on
 * the worker's replication connection. The worker must end that connection with
 * ReplicationProtocolError (read in replication-connection.ts), acknowledge nothing of the
 * transaction the message belonged to, log it and reconnect, and then write that transaction
 * exactly once when the server sends it again.
 */

import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type CdcWorker, startCdcWorker } from '../src/worker.ts';
import { type ReplicationProxy, startReplicationProxy } from './support/replication-proxy.ts';
import {
  activityCount,
  createPage,
  seedTenants,
  waitFor,
  waitForActivities,
} from './support/tracked-writes.ts';

let cluster: EmbeddedCluster;
let sql: postgres.Sql;
let proxy: ReplicationProxy;
let worker: CdcWorker;
const logLines: { msg: string; err?: { type: string; message: string } }[] = [];

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await seedTenants(sql, ['org_a']);
  proxy = await startReplicationProxy(cluster.url);
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  worker = startCdcWorker({ databaseUrl: proxy.url, logger });
  await worker.streaming();
});

afterAll(async () => {
  await worker?.stop();
  await proxy?.close();
  await sql?.end();
  await cluster?.destroy();
});

const crafted: [string, (body: Buffer) => Buffer, string][] = [
  [
    'of a kind the replication protocol does not have',
    (body) => Buffer.concat([Buffer.from('x'), body.subarray(1)]),
    "unknown replication message 'x'",
  ],
  [
    'whose pgoutput message is of an unknown kind',
    (body) => Buffer.concat([body.subarray(0, 25), Buffer.from('Z'), body.subarray(26)]),
    "unknown pgoutput message 'Z'",
  ],
  [
    'whose pgoutput insert is cut short',
    (body) => body.subarray(0, body.length - 3),
    "pgoutput message 'I' could not be decoded",
  ],
];

it.each(crafted)(
  'ends the connection on a message %s, acknowledges nothing of its transaction, reconnects and writes it once',
  async (_, craft, message) => {
    const good = `good_${logLines.length}`;
    const before = (await activityCount(sql)) + 1;
    await createPage(sql, { id: good, org: 'org_a', tx: `tx_${good}` });
    await waitForActivities(sql, before);
    const replacing = proxy.replaceNextInsert(craft);
    const hit = `hit_${logLines.length}`;
    await createPage(sql, { id: hit, org: 'org_a', tx: `tx_${hit}` });
    const replaced = await replacing;

    // the server sends the transaction again on the next connection, and it is written once
    await waitForActivities(sql, before + 1, 10_000);
    const [row] = await sql<
      { n: number }[]
    >`select count(*)::int as n from activities where transaction_id = ${`tx_${hit}`}`;
    expect(row?.n).toBe(1);
    await replaced.closed;
    // nothing past the last good transaction was acknowledged on the broken connection
    for (const position of replaced.acknowledged) expect(position).toBeLessThanOrEqual(replaced.commitLsn);
    // the supervisor logged the reason and reconnected
    const ended = logLines.find(
      (line) => line.msg === 'replication connection ended' && line.err?.message.startsWith(message),
    );
    expect(ended?.err?.type).toBe('ReplicationProtocolError');
    await waitFor(async () => worker.state() === 'streaming', { what: 'the worker streams again' });
  },
);

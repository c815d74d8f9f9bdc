/**
 * The worker's pgoutput decoder against pg-logical-replication's parser, on the same WAL: a real
 * PostgreSQL, a pgoutput slot, and every message peeked from it decoded by both.
 */

import { PUBLICATION_NAME } from '@sync/db/constants';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { parseLsn } from '@sync/db/lsn';
import { startTestDatabase } from '@sync/db/testing/database';
import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationProtocolError } from '../src/errors.ts';
import { PgoutputDecoder, type PgoutputMessage } from '../src/pgoutput-decoder.ts';
import { createPage, seedTenants, softDeletePage, updatePage } from './support/tracked-writes.ts';

const SLOT = 'decoder_test';
/** Besides the tracked tables: a table with the default replica identity (key tuples, no old row). */
const PROBE_PUBLICATION = 'decoder_probe';

let cluster: EmbeddedCluster;
let sql: postgres.Sql;

beforeAll(async () => {
  cluster = await startTestDatabase();
  sql = postgres(cluster.url, { onnotice: () => {}, max: 2 });
  await seedTenants(sql, ['org_a']);
  await sql`create table decoder_probe (id int primary key, big text, note text, at timestamptz, n int8, flag bool)`;
  await sql`create publication decoder_probe for table decoder_probe`;
});

afterAll(async () => {
  await sql?.end();
  await cluster?.destroy();
});

/** Every message the slot holds, as pgoutput's bytes (the slot is not advanced). */
async function peek(publication: string, protoVersion = '1', streaming = 'off'): Promise<Buffer[]> {
  const rows = await sql.begin(async (tx) => {
    // every transaction is streamed when protocol 2 and streaming are asked for
    await tx`set local debug_logical_replication_streaming = 'immediate'`;
    return tx<{ data: Buffer }[]>`
      select data from pg_logical_slot_peek_binary_changes(${SLOT}, null, null,
        'proto_version', ${protoVersion}, 'publication_names', ${publication}, 'streaming', ${streaming})`;
  });
  return rows.map((row) => row.data);
}

/** The library's message in the decoder's terms (its column parsers replaced by the identity). */
function fromLibrary(message: Pgoutput.Message): unknown {
  const tuple = (values: Record<string, unknown> | null) => (values === null ? null : { ...values });
  switch (message.tag) {
    case 'begin':
      return {
        tag: 'begin',
        commitLsn: parseLsn(message.commitLsn ?? '0/0'),
        commitTime: message.commitTime,
        xid: message.xid >>> 0,
      };
    case 'commit':
      return {
        tag: 'commit',
        commitLsn: parseLsn(message.commitLsn ?? '0/0'),
        endLsn: parseLsn(message.commitEndLsn ?? '0/0'),
        commitTime: message.commitTime,
      };
    case 'relation':
      for (const column of message.columns) column.parser = (raw: unknown) => raw;
      return relation(message);
    case 'insert':
      return { tag: 'insert', relation: message.relation.relationOid, new: tuple(message.new) };
    case 'update':
      return {
        tag: 'update',
        relation: message.relation.relationOid,
        key: tuple(message.key),
        old: tuple(message.old),
        new: tuple(message.new),
      };
    case 'delete':
      return {
        tag: 'delete',
        relation: message.relation.relationOid,
        key: tuple(message.key),
        old: tuple(message.old),
      };
    case 'truncate':
      return {
        tag: 'truncate',
        cascade: message.cascade,
        restartIdentity: message.restartIdentity,
        relations: message.relations.map((r) => r.relationOid),
      };
    default:
      return { tag: 'skipped', kind: message.tag };
  }
}

function relation(message: Pgoutput.MessageRelation | Extract<PgoutputMessage, { tag: 'relation' }>) {
  return {
    tag: 'relation',
    relationOid: message.relationOid,
    schema: message.schema,
    name: message.name,
    replicaIdentity: message.replicaIdentity,
    columns: message.columns.map(({ name, typeOid, flags }) => ({ name, typeOid, flags })),
    keyColumns: message.keyColumns,
  };
}

/** Ours, with relations named by oid in changes (as `fromLibrary` does). */
function fromDecoder(message: PgoutputMessage): unknown {
  switch (message.tag) {
    case 'relation':
      return relation(message);
    case 'insert':
    case 'update':
    case 'delete':
      return { ...message, relation: message.relation.relationOid };
    case 'truncate':
      return { ...message, relations: message.relations.map((r) => r.relationOid) };
    default:
      return message;
  }
}

function decodeBoth(messages: readonly Buffer[]): { library: unknown[]; ours: unknown[] } {
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION_NAME] });
  const decoder = new PgoutputDecoder();
  return {
    library: messages.map((m) => fromLibrary(plugin.parse(m))),
    ours: messages.map((m) => fromDecoder(decoder.decode(m))),
  };
}

describe('PgoutputDecoder', () => {
  it('decodes the same WAL as pg-logical-replication: inserts, updates, deletes, truncate, NULL and unchanged TOAST', async () => {
    await sql`select pg_create_logical_replication_slot(${SLOT}, 'pgoutput')`;
    // tracked tables (replica identity FULL): insert, update, soft delete, hard delete, truncate
    await createPage(sql, { id: 'p1', org: 'org_a', tx: 'tx_1', title: 'Tab\there, "quoted", ünïcode ✓' });
    await updatePage(sql, { id: 'p1', title: 'Second', tx: 'tx_2' });
    await softDeletePage(sql, { id: 'p1', tx: 'tx_3' });
    await createPage(sql, { id: 'p2', org: 'org_a', tx: 'tx_4' });
    await sql`delete from pages where id = 'p2'`;
    // a large incompressible value is stored out of line (TOAST)
    const big = sql`(select string_agg(md5(i::text || random()::text), '') from generate_series(1, 400) i)`;
    await sql`update pages set content = ${big} where id = 'p1'`;
    await sql`update pages set title = 'Third' where id = 'p1'`;
    // default replica identity: no old row, key tuples, an unchanged TOAST value not sent at all
    await sql`insert into decoder_probe values (1, ${big}, null, '2026-01-02 03:04:05.123456+00', 9007199254740993, true)`;
    await sql`update decoder_probe set note = 'changed' where id = 1`;
    await sql`update decoder_probe set id = 2 where id = 1`;
    await sql`delete from decoder_probe where id = 2`;
    await sql`truncate pages, attachments`;

    for (const publication of [PUBLICATION_NAME, PROBE_PUBLICATION]) {
      const messages = await peek(publication);
      const { library, ours } = decodeBoth(messages);
      expect(ours).toStrictEqual(library);
      const tags = ours.map((m) => (m as { tag: string }).tag);
      if (publication === PUBLICATION_NAME) {
        expect(tags).toEqual(
          expect.arrayContaining(['begin', 'relation', 'insert', 'update', 'delete', 'truncate']),
        );
      } else {
        // the unchanged TOAST value of an update without the old row is left out, as the library does
        const updates = ours.filter(
          (m): m is { tag: 'update'; new: Record<string, unknown> } =>
            (m as { tag: string }).tag === 'update',
        );
        expect(updates[0]?.new).toHaveProperty('big', undefined);
        expect(updates[0]?.new.note).toBe('changed');
        expect(updates[1]).toMatchObject({ key: { id: '1' }, old: null });
      }
    }
    // with the old row (FULL), the unchanged TOAST value comes from it
    const tracked = decodeBoth(await peek(PUBLICATION_NAME)).ours;
    const third = tracked.find(
      (m): m is { tag: 'update'; new: Record<string, string> } =>
        (m as { tag: string }).tag === 'update' && (m as { new: { title?: string } }).new.title === 'Third',
    );
    expect(third?.new.content).toHaveLength(12_800);
  });

  it('refuses the messages of protocol 2 streamed transactions, as the library does', async () => {
    await sql`insert into decoder_probe select i, repeat('x', 100) from generate_series(10, 20) i`;
    const messages = await peek(PROBE_PUBLICATION, '2', 'on');
    const streamStart = messages.find((m) => m[0] === 'S'.charCodeAt(0));
    expect(streamStart).toBeDefined();
    const decoder = new PgoutputDecoder();
    const plugin = new PgoutputPlugin({ protoVersion: 2, publicationNames: [PROBE_PUBLICATION] });
    for (const message of messages.slice(0, messages.indexOf(streamStart as Buffer))) decoder.decode(message);
    expect(() => decoder.decode(streamStart as Buffer)).toThrow(ReplicationProtocolError);
    expect(() => decoder.decode(streamStart as Buffer)).toThrow(/protocol version 2/);
    expect(() => plugin.parse(streamStart as Buffer)).toThrow(/unknown pgoutput message/);
  });

  it('refuses a change of a relation it was not told about and a message cut short', () => {
    const decoder = new PgoutputDecoder();
    const insert = Buffer.from([0x49, 0, 0, 0, 42, 0x4e, 0, 0]);
    expect(() => decoder.decode(insert)).toThrow(ReplicationProtocolError);
    expect(() => decoder.decode(Buffer.from([0x42, 0, 0]))).toThrow();
  });
});

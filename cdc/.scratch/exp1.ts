import { startTestDatabase } from '@sync/backend/testing/database';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import postgres from 'postgres';

const c = await startTestDatabase();
const sql = postgres(c.url, { onnotice: () => {} });
console.log(await sql`show timezone`, await sql`show server_version`);
await sql`create publication sync_tracked for table pages, attachments`;
const rc = new pg.Client({ connectionString: c.url, replication: 'database' } as any);
await rc.connect();
const r = await rc.query(`CREATE_REPLICATION_SLOT "s1" LOGICAL pgoutput (SNAPSHOT 'export')`);
console.log(r.rows);
await sql.begin('isolation level repeatable read', async (tx) => {
  await tx.unsafe(`set transaction snapshot '${r.rows[0].snapshot_name}'`);
  console.log(await tx`select count(*) from pages`);
});
await rc.end();
await sql`insert into users (id,email,name,password_hash) values ('u1','a@b','A','x')`;
await sql`insert into organizations (id,slug,name) values ('o1','o1','O')`;
const t0 = Date.now();
await sql`insert into pages (id, organization_id, created_by, transactions, last_client_id, title) values ('p1','o1','u1', ${sql.json({ insert: 'tx1', update: null, delete: null })}, 'c1', 'hello')`;
await sql`update pages set title='x', deleted_at=now(), transactions = jsonb_set(transactions,'{delete}','"tx2"') where id='p1'`;
await sql`delete from pages`;
const svc = new LogicalReplicationService({ connectionString: c.url, options: '-c TimeZone=UTC' } as any, {
  acknowledge: { auto: false, timeoutSeconds: 0 },
});
svc.on('data', (lsn: string, msg: any) => {
  console.log(
    lsn,
    msg.tag,
    msg.tag === 'relation' ? msg.columns.map((x: any) => [x.name, x.typeOid]) : '',
    msg.new ?? '',
    msg.old ?? '',
    msg.commitTime,
    msg.xid,
    msg.commitLsn,
    msg.commitEndLsn,
  );
});
svc.on('heartbeat', (...a: any[]) => console.log('hb', a));
svc
  .subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['sync_tracked'] }), 's1')
  .catch((e) => console.log('sub err', e));
await new Promise((r) => setTimeout(r, 1500));
console.log('now', t0 * 1000);
await svc.stop();
await sql.end();
await c.destroy();

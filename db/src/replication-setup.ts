/**
 * Idempotent setup of what logical replication needs, run by the migration step (so the slot
 * keeps the WAL from the moment the tables exist, whenever the worker starts) and again before
 * every (re)connect of the worker:
 *
 *   publication sync_tracked ⊇ registry tables ──► REPLICA IDENTITY FULL on each ──► slot check
 *
 *   slot check:  healthy ─────────────────────────────────────────────────► stream
 *                absent, no cdc_state row ──► create (initial) ───────────► stream
 *                absent / lost / left by an interrupted resync ──► RESYNC ─► stream
 *
 * RESYNC (guarantee 8): the slot's WAL is gone, so the changes it held can never become
 * activities. It is detected, never silent:
 *   1. cdc_state: epoch + 1, resynced_at = NULL (marks a resync in progress; shape handles carry
 *      the epoch, so clients refetch)
 *   2. drop the invalidated slot (only a lost one, or one step 3 created and never streamed)
 *   3. create the slot with an exported snapshot and, inside that snapshot, recompute
 *      entity_counts from the tracked tables' live rows and set resynced_at = now()
 * The counts then equal the rows exactly as of the slot's start, and every later change arrives
 * as a delta. A crash between 1 and 3 leaves resynced_at NULL, so the next start redoes 2–3.
 * The initial creation is step 3 alone, by the first migration.
 */

import pg from 'pg';
import type { Logger } from 'pino';
import postgres from 'postgres';
import { PUBLICATION_NAME, SETUP_LOCK_KEY, SLOT_NAME_PATTERN } from './constants.ts';
import { parseLsn } from './lsn.ts';
import { reconnectDelaySeconds } from './reconnect-delay.ts';
import { trackedTables } from './tracked-tables.ts';

/** The slot or its state could not be prepared (bad name, no snapshot, vanished right after setup). */
export class SlotSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export interface SlotInfo {
  exists: boolean;
  active: boolean;
  /** `wal_status = 'lost'` or an invalidation reason: the slot can never stream again. */
  lost: boolean;
  confirmedFlushLsn: bigint | null;
}

export interface CdcStateRow {
  epoch: number;
  resyncedAt: string | null;
}

export type SlotPreparation =
  | { kind: 'ready' }
  | { kind: 'created' }
  | { kind: 'resynced'; reason: string; epoch: number };

function assertSlotName(slotName: string): void {
  if (!SLOT_NAME_PATTERN.test(slotName)) {
    throw new SlotSetupError(`invalid replication slot name "${slotName}": use 1-63 of a-z, 0-9 and _`);
  }
}

/** Everything the worker needs before it can stream; safe to run concurrently and repeatedly. */
export async function prepareReplication(
  sql: postgres.Sql,
  databaseUrl: string,
  slotName: string,
  logger: Logger,
): Promise<SlotPreparation> {
  assertSlotName(slotName);
  const lock = await sql.reserve();
  try {
    // Held by this one connection; the work itself may use any connection of the pool.
    await lock`select pg_advisory_lock(${SETUP_LOCK_KEY})`;
    await ensurePublication(sql, logger);
    await ensureReplicaIdentityFull(sql, logger);
    return await ensureSlot(sql, databaseUrl, slotName, logger);
  } finally {
    await lock`select pg_advisory_unlock(${SETUP_LOCK_KEY})`.catch(() => {});
    lock.release();
  }
}

/** `prepareReplication` on a pool of its own (the migration step: API, worker, tests, benches). */
export async function prepareReplicationAt(
  databaseUrl: string,
  slotName: string,
  logger: Logger,
): Promise<SlotPreparation> {
  const sql = postgres(databaseUrl, {
    max: 3,
    onnotice: () => {},
    connection: { application_name: 'sync-cdc-setup' },
    backoff: reconnectDelaySeconds,
  });
  try {
    return await prepareReplication(sql, databaseUrl, slotName, logger);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function ensurePublication(sql: postgres.Sql, logger: Logger): Promise<void> {
  const [publication] = await sql`select 1 from pg_publication where pubname = ${PUBLICATION_NAME}`;
  const tableNames = trackedTables.map((t) => t.tableName);
  if (!publication) {
    await sql`create publication ${sql(PUBLICATION_NAME)} for table ${sql(tableNames)}`;
    logger.info({ publication: PUBLICATION_NAME, tables: tableNames }, 'publication created');
    return;
  }
  const present = await sql<{ tablename: string }[]>`
    select tablename from pg_publication_tables where pubname = ${PUBLICATION_NAME} and schemaname = 'public'`;
  const missing = tableNames.filter((name) => !present.some((row) => row.tablename === name));
  if (missing.length > 0) {
    await sql`alter publication ${sql(PUBLICATION_NAME)} add table ${sql(missing)}`;
    logger.info({ publication: PUBLICATION_NAME, tables: missing }, 'tables added to the publication');
  }
}

/** Updates and deletes must carry the old row: changed keys, previous values, soft deletes. */
async function ensureReplicaIdentityFull(sql: postgres.Sql, logger: Logger): Promise<void> {
  const tableNames = trackedTables.map((t) => t.tableName);
  const notFull = await sql<{ relname: string }[]>`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relname = any(${tableNames}) and c.relreplident <> 'f'`;
  for (const { relname } of notFull) {
    await sql`alter table ${sql(relname)} replica identity full`;
    logger.info({ table: relname }, 'replica identity set to FULL');
  }
}

export async function inspectSlot(sql: postgres.Sql, slotName: string): Promise<SlotInfo> {
  // to_jsonb: `invalidation_reason` exists from PostgreSQL 17 on.
  const [slot] = await sql<{ active: boolean; lost: boolean; confirmed_flush_lsn: string | null }[]>`
    select s.active,
      coalesce(s.wal_status = 'lost', false) or (to_jsonb(s) ->> 'invalidation_reason') is not null as lost,
      s.confirmed_flush_lsn::text as confirmed_flush_lsn
    from pg_replication_slots s where s.slot_name = ${slotName}`;
  if (!slot) return { exists: false, active: false, lost: false, confirmedFlushLsn: null };
  return {
    exists: true,
    active: slot.active,
    lost: slot.lost,
    confirmedFlushLsn: slot.confirmed_flush_lsn ? parseLsn(slot.confirmed_flush_lsn) : null,
  };
}

async function readCdcState(sql: postgres.Sql, slotName: string): Promise<CdcStateRow | null> {
  const [row] = await sql<{ epoch: number; resynced_at: string | null }[]>`
    select epoch, resynced_at::text from cdc_state where slot_name = ${slotName}`;
  return row ? { epoch: row.epoch, resyncedAt: row.resynced_at } : null;
}

/** The slot has a consumer: `readCdcStatus` moves from `starting` to `streaming` (later `stopped`). */
export async function recordStreaming(sql: postgres.Sql, slotName: string): Promise<void> {
  await sql`update cdc_state set streamed_at = now(), updated_at = now() where slot_name = ${slotName}`;
}

async function ensureSlot(
  sql: postgres.Sql,
  databaseUrl: string,
  slotName: string,
  logger: Logger,
): Promise<SlotPreparation> {
  const slot = await inspectSlot(sql, slotName);
  const state = await readCdcState(sql, slotName);
  const resyncPending = state !== null && state.epoch > 1 && state.resyncedAt === null;

  if (slot.exists && !slot.lost && state && !resyncPending) return { kind: 'ready' };

  if (!state && !slot.exists) {
    await createSlotAndRecount(sql, databaseUrl, slotName, logger);
    logger.info('replication slot created');
    return { kind: 'created' };
  }

  const reason = !state
    ? 'slot without state (interrupted creation)'
    : resyncPending
      ? 'interrupted resync'
      : slot.lost
        ? 'slot invalidated (wal_status lost): its WAL was removed'
        : 'slot missing';
  let epoch = state?.epoch ?? 1;
  if (state && !resyncPending) {
    const [bumped] = await sql<{ epoch: number }[]>`
      update cdc_state set epoch = epoch + 1, resynced_at = null, updated_at = now()
      where slot_name = ${slotName} returning epoch`;
    epoch = bumped?.epoch ?? epoch + 1;
  }
  logger.warn(
    { reason, epoch },
    'RESYNC: the replication slot cannot resume; changes since the last acknowledged position get no activities. Recreating the slot, recomputing entity counts, bumping the epoch',
  );
  if (slot.exists) {
    // Only a lost slot, or one an interrupted (re)creation left before it ever streamed.
    await sql`select pg_drop_replication_slot(${slotName})`;
    logger.warn('dropped the unusable replication slot');
  }
  await createSlotAndRecount(sql, databaseUrl, slotName, logger);
  logger.warn({ epoch }, 'RESYNC complete: slot recreated, entity counts recomputed');
  return { kind: 'resynced', reason, epoch };
}

/**
 * Create the slot with an exported snapshot and, in that snapshot, recompute the counts and
 * mark the state complete. The replication connection must stay open (and idle) until the
 * snapshot has been imported.
 */
async function createSlotAndRecount(
  sql: postgres.Sql,
  databaseUrl: string,
  slotName: string,
  logger: Logger,
): Promise<void> {
  const replication = new pg.Client({
    connectionString: databaseUrl,
    replication: 'database',
    application_name: 'sync-cdc-setup',
  } as pg.ClientConfig);
  replication.on('error', (error) => logger.debug({ err: error }, 'setup replication connection error'));
  await replication.connect();
  try {
    const created = await replication.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT "${slotName}" LOGICAL pgoutput (SNAPSHOT 'export')`,
    );
    const { consistent_point: consistentPoint, snapshot_name: snapshotName } = created.rows[0] ?? {};
    if (!consistentPoint || !snapshotName || !/^[0-9A-F-]+$/i.test(snapshotName)) {
      throw new SlotSetupError('CREATE_REPLICATION_SLOT returned no snapshot');
    }
    // last_lsn := consistent point − 1: the slot streams commits from the consistent point on,
    // and a commit record may start exactly there.
    await sql.begin('isolation level repeatable read', async (tx) => {
      await tx.unsafe(`set transaction snapshot '${snapshotName}'`);
      await recomputeEntityCounts(tx);
      await tx`
        insert into cdc_state (slot_name, epoch, last_lsn, updated_at)
        values (${slotName}, 1, ${String(parseLsn(consistentPoint) - 1n)}::int8, now())
        on conflict (slot_name) do update set
          last_lsn = greatest(cdc_state.last_lsn, excluded.last_lsn),
          resynced_at = case when cdc_state.epoch > 1 then now() else cdc_state.resynced_at end,
          streamed_at = null,
          updated_at = now()`;
    });
    logger.debug({ consistentPoint }, 'slot snapshot applied to entity_counts');
  } finally {
    await replication.end().catch(() => {});
  }
}

/** entity_counts := live rows per organization and tracked type, as the transaction sees them. */
async function recomputeEntityCounts(tx: postgres.TransactionSql): Promise<void> {
  const entityTypes = trackedTables.map((t) => t.entityType);
  await tx`delete from entity_counts where entity_type = any(${entityTypes})`;
  for (const tracked of trackedTables) {
    await tx`
      insert into entity_counts (organization_id, entity_type, count)
      select organization_id, ${tracked.entityType}, count(*) from ${tx(tracked.tableName)}
      where deleted_at is null group by organization_id`;
  }
}

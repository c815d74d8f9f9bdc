/**
 * Reads of the activity log written by the CDC worker: the feed, a transaction's status and
 * the live-entity counts. All of them see one committed state (guarantee 6).
 */
import type { AppDeps } from '../../core/app-env.ts';
import type { Sql } from '../../db/client.ts';
import { trackedTables } from '../../db/tracked-tables.ts';

export interface ActivityFilters {
  entityType?: string | undefined;
  entityId?: string | undefined;
  transactionId?: string | undefined;
  clientId?: string | undefined;
  action?: ActivityRow['action'] | undefined;
  undoesTransactionId?: string | undefined;
  after?: string | undefined;
  limit: number;
}

interface ActivityRow {
  lsn: string;
  position: number;
  type: string;
  action: 'create' | 'update' | 'delete' | 'truncate';
  entity_type: string;
  entity_id: string;
  organization_id: string;
  user_id: string | null;
  transaction_id: string | null;
  client_id: string | null;
  changed_keys: string[];
  previous_values: Record<string, unknown> | null;
  undoes_transaction_id: string | null;
  created_at: Date;
}

export function activityId(row: { lsn: string | bigint; position: number }): string {
  return `${row.lsn}_${row.position}`;
}

export function parseActivityId(id: string): { lsn: string; position: number } {
  const [lsn, position] = id.split('_');
  return { lsn: lsn ?? '0', position: Number(position ?? 0) };
}

function presentActivity(row: ActivityRow) {
  return {
    id: activityId(row),
    type: row.type,
    action: row.action,
    entityType: row.entity_type,
    entityId: row.entity_id,
    organizationId: row.organization_id,
    userId: row.user_id,
    transactionId: row.transaction_id,
    clientId: row.client_id,
    changedKeys: row.changed_keys,
    ...(row.previous_values ? { previousValues: row.previous_values } : {}),
    ...(row.undoes_transaction_id ? { undoesTransactionId: row.undoes_transaction_id } : {}),
    createdAt: row.created_at.toISOString(),
  };
}

export type Activity = ReturnType<typeof presentActivity>;

/** `lsn` is read as text (an int8 may exceed 2^53): ORDER BY must name `activities.lsn`, or it sorts the text. */
const ACTIVITY_COLUMNS = (sql: Sql) =>
  sql`lsn::text as lsn, position, type, action, entity_type, entity_id, organization_id, user_id,
      transaction_id, client_id, changed_keys, previous_values, undoes_transaction_id, created_at`;

/** Activities of one organization after a cursor, oldest first. */
export async function listActivities(sql: Sql, organizationId: string, filters: ActivityFilters) {
  const after = filters.after ? parseActivityId(filters.after) : null;
  const rows = await sql<ActivityRow[]>`
    select ${ACTIVITY_COLUMNS(sql)}
    from activities
    where organization_id = ${organizationId}
      ${filters.entityType ? sql`and entity_type = ${filters.entityType}` : sql``}
      ${filters.entityId ? sql`and entity_id = ${filters.entityId}` : sql``}
      ${filters.transactionId ? sql`and transaction_id = ${filters.transactionId}` : sql``}
      ${filters.clientId ? sql`and client_id = ${filters.clientId}` : sql``}
      ${filters.action ? sql`and action = ${filters.action}` : sql``}
      ${filters.undoesTransactionId ? sql`and undoes_transaction_id = ${filters.undoesTransactionId}` : sql``}
      ${after ? sql`and (lsn, position) > (${after.lsn}::bigint, ${after.position}::int)` : sql``}
    order by activities.lsn, activities.position
    limit ${filters.limit + 1}`;
  const items = rows.slice(0, filters.limit).map(presentActivity);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > filters.limit && last ? last.id : null };
}

/** The activity that recorded a transaction, once the CDC worker has written it. */
export async function findTransactionActivity(sql: Sql, organizationId: string, transactionId: string) {
  const [row] = await sql<ActivityRow[]>`
    select ${ACTIVITY_COLUMNS(sql)}
    from activities
    where organization_id = ${organizationId} and transaction_id = ${transactionId}
    order by activities.lsn, activities.position
    limit 1`;
  return row ? presentActivity(row) : null;
}

/**
 * Absolute totals of live entities and the id of the last activity they include. One
 * statement, so one snapshot: the worker commits counts and activities together.
 */
export async function readCounts(deps: Pick<AppDeps, 'sql'>, organizationId: string) {
  const [row] = await deps.sql<
    { counts: Record<string, number> | null; lsn: string | null; position: number | null }[]
  >`
    select (select jsonb_object_agg(entity_type, count) from entity_counts where organization_id = ${organizationId}) as counts,
           last.lsn::text as lsn, last.position
    from (select 1) as one
    left join lateral (
      select lsn, position from activities where organization_id = ${organizationId}
      order by lsn desc, position desc limit 1
    ) as last on true`;
  const counts = Object.fromEntries(trackedTables.map((t) => [t.entityType, 0]));
  for (const [entityType, count] of Object.entries(row?.counts ?? {})) counts[entityType] = Number(count);
  const offset = row?.lsn ? activityId({ lsn: row.lsn, position: row.position ?? 0 }) : null;
  return { counts, offset };
}

/**
 * Reads of the activity log written by the CDC worker: the feed, a transaction's status and
 * the live-entity counts. All of them see one committed state (guarantee 6).
 */

import { activityId, parseActivityId } from '@sync/db/lsn';
import type { ActivityRow } from '@sync/db/schema';
import { trackedTables } from '@sync/db/tracked-tables';
import type { AppDeps } from '../../core/app-env.ts';
import type { Sql } from '../../db/client.ts';

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

/** An activity as the feed reads it: the LSN as text (an int8 may exceed 2^53), the commit time as a Date. */
type FeedActivityRow = Omit<ActivityRow, 'lsn' | 'row' | 'xid' | 'createdAt'> & {
  lsn: string;
  createdAt: Date;
};

export function presentActivity(row: FeedActivityRow) {
  return {
    id: activityId(row),
    type: row.type,
    action: row.action,
    entityType: row.entityType,
    entityId: row.entityId,
    organizationId: row.organizationId,
    userId: row.userId,
    transactionId: row.transactionId,
    clientId: row.clientId,
    changedKeys: row.changedKeys,
    ...(row.previousValues ? { previousValues: row.previousValues } : {}),
    ...(row.undoesTransactionId ? { undoesTransactionId: row.undoesTransactionId } : {}),
    createdAt: row.createdAt.toISOString(),
  };
}

export type Activity = ReturnType<typeof presentActivity>;

/** `lsn` is read as text (an int8 may exceed 2^53): ORDER BY must name `activities.lsn`, or it sorts the text. */
const ACTIVITY_COLUMNS = (sql: Sql) =>
  sql`lsn::text as lsn, position, type, action, entity_type as "entityType", entity_id as "entityId",
      organization_id as "organizationId", user_id as "userId", transaction_id as "transactionId",
      client_id as "clientId", changed_keys as "changedKeys", previous_values as "previousValues",
      undoes_transaction_id as "undoesTransactionId", created_at as "createdAt"`;

/** Activities of one organization after a cursor, oldest first. */
export async function listActivities(sql: Sql, organizationId: string, filters: ActivityFilters) {
  const after = filters.after ? parseActivityId(filters.after) : null;
  const rows = await sql<FeedActivityRow[]>`
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
  const [row] = await sql<FeedActivityRow[]>`
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

/**
 * The single definition of every table. The CDC worker imports it too (via the tracked-table
 * registry), so a column is declared once.
 */
import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

// ── Context entities: plain REST, server ids ────────────────────────────────────────────────

export const users = pgTable('users', {
  id: text('id').primaryKey(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  passwordHash: text('password_hash').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const sessions = pgTable(
  'sessions',
  {
    /** SHA-256 of the bearer token: a leaked table does not leak usable tokens. */
    tokenHash: text('token_hash').primaryKey(),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    expiresAt: timestamptz('expires_at').notNull(),
  },
  (t) => [index('sessions_user_idx').on(t.userId)],
);

export const organizations = pgTable('organizations', {
  id: text('id').primaryKey(),
  slug: text('slug').notNull().unique(),
  name: text('name').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  createdBy: text('created_by').references(() => users.id, { onDelete: 'set null' }),
});

export const memberships = pgTable(
  'memberships',
  {
    organizationId: text('organization_id')
      .notNull()
      .references(() => organizations.id, { onDelete: 'cascade' }),
    userId: text('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: text('role', { enum: ['admin', 'member'] }).notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.userId] }), index('memberships_user_idx').on(t.userId)],
);

// ── Product entities: tracked ───────────────────────────────────────────────────────────────

/** The transaction ids that created, last updated and deleted a row (set by the server only). */
export interface RowTransactions {
  insert: string | null;
  update: string | null;
  delete: string | null;
  /**
   * The last undo applied to the row: that write's own transaction id and the transaction it
   * undid. Self-identifying, so later writes need not clear it: the CDC worker names the undone
   * transaction only on the activity whose transaction id is `transactionId`.
   */
  undo?: RowUndo;
}

export interface RowUndo {
  transactionId: string;
  undoes: string;
}

/** Columns every tracked table has; the tracked-entity core reads and writes only these. */
const trackedColumns = () => ({
  id: text('id').primaryKey(),
  organizationId: text('organization_id')
    .notNull()
    .references(() => organizations.id, { onDelete: 'cascade' }),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  createdBy: text('created_by').notNull(),
  modifiedAt: timestamptz('modified_at'),
  modifiedBy: text('modified_by'),
  deletedAt: timestamptz('deleted_at'),
  transactions: jsonb('transactions').$type<RowTransactions>().notNull(),
  lastClientId: text('last_client_id'),
});
export type TrackedColumnBuilders = ReturnType<typeof trackedColumns>;

export const pages = pgTable(
  'pages',
  {
    ...trackedColumns(),
    title: text('title').notNull(),
    content: text('content').notNull().default(''),
  },
  (t) => [
    index('pages_live_list_idx').on(t.organizationId, t.createdAt, t.id).where(sql`deleted_at IS NULL`),
  ],
);

export const attachments = pgTable(
  'attachments',
  {
    ...trackedColumns(),
    pageId: text('page_id').references(() => pages.id, { onDelete: 'set null' }),
    filename: text('filename').notNull(),
    contentType: text('content_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    url: text('url').notNull(),
  },
  (t) => [
    index('attachments_live_list_idx').on(t.organizationId, t.createdAt, t.id).where(sql`deleted_at IS NULL`),
    index('attachments_page_idx').on(t.pageId),
  ],
);

/**
 * Idempotency (guarantee 1): one row per applied mutation, inserted in the same DB transaction
 * as the mutation. The primary key serialises concurrent duplicates: the second insert waits
 * for the first transaction and then sees the conflict. Rows older than the retention window
 * are deleted; a replay older than that is treated as new (documented in the README).
 */
export const appliedTransactions = pgTable(
  'applied_transactions',
  {
    transactionId: text('transaction_id').primaryKey(),
    organizationId: text('organization_id').notNull(),
    entityType: text('entity_type').notNull(),
    entityId: text('entity_id').notNull(),
    action: text('action', { enum: ['create', 'update', 'delete'] }).notNull(),
    appliedAt: timestamptz('applied_at').notNull().defaultNow(),
  },
  // BRIN: applied_at only grows, and retention's range delete is its one reader; a btree here
  // cost every tracked write an extra index insert
  (t) => [index('applied_transactions_applied_at_idx').using('brin', t.appliedAt)],
);

// ── Written by the CDC worker ───────────────────────────────────────────────────────────────

/**
 * One row per change of a tracked table. The key (lsn, position) is the commit LSN of the source
 * transaction and the change's index in it: deterministic, so a replayed WAL segment rewrites
 * nothing (guarantee 3). Its text form `<lsn>_<position>` is the activity id, the feed cursor
 * and the shape offset.
 */
export const activities = pgTable(
  'activities',
  {
    lsn: bigint('lsn', { mode: 'bigint' }).notNull(),
    position: integer('position').notNull(),
    type: text('type').notNull(),
    /** `truncate`: a TRUNCATE of the table removed every row of the organization (entity_id `*`). */
    action: text('action', { enum: ['create', 'update', 'delete', 'truncate'] }).notNull(),
    entityType: text('entity_type').notNull(),
    entityId: text('entity_id').notNull(),
    organizationId: text('organization_id').notNull(),
    userId: text('user_id'),
    transactionId: text('transaction_id'),
    clientId: text('client_id'),
    changedKeys: text('changed_keys').array().notNull(),
    /** The row after the change, as column name → value (snake_case, as in the table). */
    row: jsonb('row').$type<Record<string, unknown>>().notNull(),
    previousValues: jsonb('previous_values').$type<Record<string, unknown>>(),
    /** For the activity of an undo: the transaction it undid. */
    undoesTransactionId: text('undoes_transaction_id'),
    /** PostgreSQL xid of the source transaction (Electric's `txids`). */
    xid: bigint('xid', { mode: 'number' }).notNull(),
    /** Commit time from the WAL, not the worker's clock. */
    createdAt: timestamptz('created_at').notNull(),
  },
  (t) => [
    // Every index is paid by the CDC worker on every row (they are most of a batch's write
    // cost), so each one has a reader that would otherwise scan an organization's whole log:
    primaryKey({ columns: [t.lsn, t.position] }),
    // the feed, its entityType/clientId/action filters, shape logs (entity type filtered on
    // the organization's tail after an offset), counts' last id, the log head
    index('activities_org_feed_idx').on(t.organizationId, t.lsn, t.position),
    // an entity's history (feed ?entityId=)
    index('activities_entity_idx').on(t.organizationId, t.entityId, t.lsn, t.position),
    // transaction status, undo's lookup of the transaction it undoes (feed ?transactionId=); the
    // readers filter by organization on the row: without it in the key, each row's entry is
    // smaller and cheaper to insert (a hash index is cheaper still, until one transaction id
    // repeats: its entries chain in one bucket that every insert walks)
    index('activities_transaction_idx').on(t.transactionId),
    // (none on created_at: retention finds its cutoff by bisecting the primary key, since commit
    // times grow with commit LSNs)
    // partial: the few undo activities only, so other rows pay no index insert
    index('activities_undoes_idx')
      .on(t.organizationId, t.undoesTransactionId)
      .where(sql`undoes_transaction_id IS NOT NULL`),
  ],
);

/** An `activities` row as the worker writes it; `createdAt` keeps the commit time's microseconds. */
export type ActivityRow = Omit<typeof activities.$inferSelect, 'createdAt'> & { createdAt: string };

/** Live (not deleted) entities per organization and type, maintained with the activities. */
export const entityCounts = pgTable(
  'entity_counts',
  {
    organizationId: text('organization_id').notNull(),
    entityType: text('entity_type').notNull(),
    count: bigint('count', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.organizationId, t.entityType] })],
);

/**
 * The worker's durable state, one row per replication slot. `epoch` increases on every resync
 * (slot lost or invalidated): shape handles include it, so clients refetch (guarantee 8).
 */
export const cdcState = pgTable('cdc_state', {
  slotName: text('slot_name').primaryKey(),
  epoch: integer('epoch').notNull().default(1),
  /** Highest commit LSN whose activities are committed. */
  lastLsn: bigint('last_lsn', { mode: 'bigint' }).notNull().default(sql`0`),
  lastEventAt: timestamptz('last_event_at'),
  /** Activities with a key below this were written before the last resync; a gap may precede it. */
  resyncedAt: timestamptz('resynced_at'),
  /**
   * A large source transaction is written in parts before its commit: positions below
   * `open_position` of the transaction committing at `open_lsn` are written (null: none open).
   */
  openLsn: bigint('open_lsn', { mode: 'bigint' }),
  openPosition: integer('open_position'),
  /** When a worker last began streaming the slot; null from its (re)creation until then (`starting`). */
  streamedAt: timestamptz('streamed_at'),
  /** Peak resident memory of the worker process that wrote the last batch. */
  workerPeakRssBytes: bigint('worker_peak_rss_bytes', { mode: 'number' }),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
});

/**
 * The activity log's identity and retention watermark (one row). Shape handles include `id`,
 * so a client holding an offset of a previous database is told to refetch; an offset
 * before `prunedThroughLsn` may have lost entries to retention and is answered 409 too.
 */
export const activityLog = pgTable('activity_log', {
  id: text('id').primaryKey().default(sql`substr(md5(random()::text || clock_timestamp()::text), 1, 12)`),
  prunedThroughLsn: bigint('pruned_through_lsn', { mode: 'bigint' }).notNull().default(sql`0`),
});

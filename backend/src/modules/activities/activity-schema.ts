import { z } from '@hono/zod-openapi';

/** `<commit lsn>_<position>`: the activity id, the feed cursor and the shape offset. */
export const ACTIVITY_CURSOR = /^\d{1,20}_\d{1,10}$/;

export const ActivitySchema = z
  .object({
    id: z.string().openapi({
      description: 'Deterministic key `<commit lsn>_<position in transaction>`; also the cursor',
    }),
    type: z.string().openapi({ example: 'page.created' }),
    action: z.enum(['create', 'update', 'delete', 'truncate']).openapi({
      description:
        "`truncate`: a TRUNCATE of the table removed all of the organization's entities of this type (type `<entityType>.truncated`, entityId `*`, no user, transaction or client)",
    }),
    entityType: z.string(),
    entityId: z.string().openapi({ description: 'The entity, or `*` for a truncation' }),
    organizationId: z.string(),
    userId: z.string().nullable(),
    transactionId: z.string().nullable(),
    clientId: z.string().nullable(),
    changedKeys: z.array(z.string()),
    previousValues: z.record(z.string(), z.unknown()).optional(),
    undoesTransactionId: z
      .string()
      .optional()
      .openapi({ description: 'On the activity of an undo: the transaction it undid' }),
    createdAt: z.string().openapi({ description: 'Commit time of the change, from the WAL' }),
  })
  .openapi('Activity');

export const ActivityQuery = z.object({
  entityType: z.string().max(64).optional(),
  entityId: z.string().max(64).optional(),
  transactionId: z.string().max(64).optional(),
  clientId: z.string().max(64).optional(),
  action: z.enum(['create', 'update', 'delete', 'truncate']).optional(),
  undoesTransactionId: z
    .string()
    .max(64)
    .optional()
    .openapi({ description: 'Only the undo of this transaction (none: it was not undone)' }),
  after: z.string().regex(ACTIVITY_CURSOR, 'Expected an activity id such as 24860416_0').optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const ActivityPageSchema = z
  .object({ items: z.array(ActivitySchema), nextCursor: z.string().nullable() })
  .openapi('ActivityPage');

export const TransactionStatusSchema = z
  .object({ transactionId: z.string(), status: z.literal('applied'), activity: ActivitySchema })
  .openapi('TransactionStatus');

export const UnknownTransactionSchema = z
  .object({
    error: z.string(),
    code: z.string(),
    message: z.string(),
    transactionId: z.string(),
    status: z.literal('unknown'),
  })
  .openapi('UnknownTransaction');

export const CountsSchema = z
  .object({
    counts: z.record(z.string(), z.number()).openapi({ example: { page: 12, attachment: 3 } }),
    offset: z.string().nullable().openapi({ description: 'Id of the last activity these totals include' }),
  })
  .openapi('Counts');

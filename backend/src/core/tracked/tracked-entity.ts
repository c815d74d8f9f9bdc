/**
 * What a product entity module declares to get the whole tracked path (routes, idempotent
 * lock-checked writes, CDC, shapes): its registry entry, its own fields and its input schemas.
 */
import { z } from '@hono/zod-openapi';
import type { TrackedPgTable, TrackedTable } from '@sync/db/tracked-tables';
import type { Db } from '../../db/client.ts';
import { ID_PATTERN } from '../protocol.ts';

export interface TrackedEntityDefinition<
  Table extends TrackedPgTable = TrackedPgTable,
  Fields extends z.ZodRawShape = z.ZodRawShape,
  Create extends z.ZodObject = z.ZodObject,
  Update extends z.ZodObject = z.ZodObject,
> {
  tracked: TrackedTable<Table>;
  /** Display names used for OpenAPI operation ids and paths: `Page` / `pages`. */
  singular: string;
  plural: string;
  /** The entity's own columns as returned in JSON (camelCase, as in schema.ts). */
  fields: Fields;
  /** Body of a create, without `id` (added by the core). */
  createBody: Create;
  /** Body of an update: every field optional. */
  updateBody: Update;
  /**
   * Checks that references point inside the organization; throws a 400 otherwise. `input` is
   * the validated create or update body (an update's may lack any field).
   */
  checkReferences?: (db: Db, organizationId: string, input: Record<string, unknown>) => Promise<void>;
}

export function defineTrackedEntity<
  Table extends TrackedPgTable,
  Fields extends z.ZodRawShape,
  Create extends z.ZodObject,
  Update extends z.ZodObject,
>(
  definition: TrackedEntityDefinition<Table, Fields, Create, Update>,
): TrackedEntityDefinition<Table, Fields, Create, Update> {
  return definition;
}

export const EntityIdSchema = z.string().regex(ID_PATTERN, 'Ids are 8-64 characters of A-Z a-z 0-9 _ -');

const RowTransactionsSchema = z
  .object({
    insert: z.string().nullable(),
    update: z.string().nullable(),
    delete: z.string().nullable(),
    undo: z.object({ transactionId: z.string(), undoes: z.string() }).optional().openapi({
      description:
        'The last undo applied to this entity: its own transaction id and the transaction it undid',
    }),
  })
  .openapi('RowTransactions');

/** The JSON of a tracked entity: the shared bookkeeping columns plus the entity's own fields. */
export function trackedEntitySchema<Fields extends z.ZodRawShape>(singular: string, fields: Fields) {
  return z
    .object({
      id: z.string(),
      organizationId: z.string(),
      ...fields,
      createdAt: z.string(),
      createdBy: z.string(),
      modifiedAt: z.string().nullable(),
      modifiedBy: z.string().nullable(),
      deletedAt: z.string().nullable(),
      transactions: RowTransactionsSchema,
      lastClientId: z.string().nullable(),
    })
    .openapi(singular);
}

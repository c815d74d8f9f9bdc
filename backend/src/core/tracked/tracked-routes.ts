/**
 * The five REST routes of a tracked entity, generated from its definition:
 *   GET/POST /organizations/{org}/<plural>   GET/PATCH/DELETE /organizations/{org}/<plural>/{id}
 * Handlers stay thin: validate, call the operation, answer with the transaction headers.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { currentOrganization, currentUser, requireMember } from '../guards.ts';
import { bearerSecurity, ErrorSchema, errorResponses, jsonContent, OrgParam } from '../openapi.ts';
import { HEADER, ID_PATTERN } from '../protocol.ts';
import { EntityIdSchema, type TrackedEntityDefinition, trackedEntitySchema } from './tracked-entity.ts';
import {
  createTracked,
  deleteTracked,
  getTracked,
  listTracked,
  presentTrackedRow,
  updateTracked,
  type WriteContext,
  type WriteResult,
} from './tracked-operations.ts';
import { resolveTransactionHeaders } from './transaction-headers.ts';

const headerId = (description: string) =>
  z
    .string()
    .regex(ID_PATTERN, 'Expected 8-64 characters of A-Z a-z 0-9 _ -')
    .optional()
    .openapi({ description });

export const TransactionHeadersSchema = z.object({
  [HEADER.transactionId]: headerId('Unique id of this mutation; replays with the same id are applied once'),
  [HEADER.clientId]: headerId('Persistent id of the client device or tab, stored as lastClientId'),
});

const LockedTransactionHeadersSchema = TransactionHeadersSchema.extend({
  [HEADER.expectedTransactionId]: headerId(
    "Optimistic lock: the entity's current version (transactions.update ?? transactions.insert)",
  ),
});

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: EntityIdSchema.optional(),
});

export const ConflictSchema = ErrorSchema.extend({
  serverVersion: z.record(z.string(), z.unknown()).optional(),
  expectedTransaction: z.string().nullable().optional(),
  actualTransaction: z.string().nullable().optional(),
}).openapi('ConflictError');

export const writeHeaders = {
  // documented in the spelling of docs/API.md; HTTP header names are case-insensitive
  'X-Transaction-Id': {
    schema: { type: 'string' as const },
    description: 'The transaction id that was applied',
  },
  'X-Idempotent-Hit': {
    schema: { type: 'string' as const },
    description: '`true` when this replayed an already-applied transaction',
  },
  'X-Txid': {
    schema: { type: 'string' as const, pattern: '^[0-9]+$' },
    description:
      'The PostgreSQL transaction id (xid, decimal) that applied the write, as shape change messages carry it in `headers.txids`: lets Electric and TanStack DB clients `awaitTxId`. Absent on an idempotent hit.',
  },
};

export function trackedEntityRoutes(definition: TrackedEntityDefinition) {
  const { singular, plural } = definition;
  const Entity = trackedEntitySchema(singular, definition.fields);
  const collection = `/organizations/{org}/${plural}`;
  const item = `${collection}/{id}`;
  const ItemParams = OrgParam.extend({ id: EntityIdSchema.openapi({ param: { name: 'id', in: 'path' } }) });
  const guarded = { middleware: [requireMember], security: bearerSecurity, tags: [plural] };
  const written = (description: string) => ({ ...jsonContent(Entity, description), headers: writeHeaders });
  const conflict = {
    409: jsonContent(ConflictSchema, 'TRANSACTION_CONFLICT, ENTITY_DELETED, TRANSACTION_ID_REUSED, ID_TAKEN'),
  };

  const list = createRoute({
    ...guarded,
    operationId: `list${singular}s`,
    method: 'get',
    path: collection,
    request: { params: OrgParam, query: ListQuery },
    responses: {
      200: jsonContent(
        z.object({ items: z.array(Entity), nextCursor: z.string().nullable() }),
        `Live ${plural}`,
      ),
      ...errorResponses(400, 401, 404),
    },
  });
  const create = createRoute({
    ...guarded,
    operationId: `create${singular}`,
    method: 'post',
    path: collection,
    request: {
      params: OrgParam,
      headers: TransactionHeadersSchema,
      body: {
        content: {
          'application/json': { schema: definition.createBody.extend({ id: EntityIdSchema.optional() }) },
        },
        required: true,
      },
    },
    responses: {
      201: written('Created'),
      200: written('A replay of an already-applied create: the current entity'),
      ...errorResponses(400, 401, 404, 413),
      ...conflict,
    },
  });
  const get = createRoute({
    ...guarded,
    operationId: `get${singular}`,
    method: 'get',
    path: item,
    request: { params: ItemParams },
    responses: { 200: jsonContent(Entity, singular), ...errorResponses(400, 401, 404) },
  });
  const update = createRoute({
    ...guarded,
    operationId: `update${singular}`,
    method: 'patch',
    path: item,
    request: {
      params: ItemParams,
      headers: LockedTransactionHeadersSchema,
      body: { content: { 'application/json': { schema: definition.updateBody } }, required: true },
    },
    responses: {
      200: written('Updated, or a replay'),
      ...errorResponses(400, 401, 404, 413),
      ...conflict,
    },
  });
  const remove = createRoute({
    ...guarded,
    operationId: `delete${singular}`,
    method: 'delete',
    path: item,
    request: { params: ItemParams, headers: LockedTransactionHeadersSchema },
    responses: {
      200: written('Soft-deleted (deletedAt set), or a replay'),
      ...errorResponses(400, 401, 404),
      ...conflict,
    },
  });

  const writeContext = (
    c: Context<AppEnv>,
    headers: Parameters<typeof resolveTransactionHeaders>[0],
  ): WriteContext => ({
    ...resolveTransactionHeaders(headers),
    organizationId: currentOrganization(c).id,
    userId: currentUser(c).id,
  });
  /** Sets the transaction headers; a replay answers 200 whatever the write's own status. */
  const answer = (c: Context<AppEnv>, context: WriteContext, result: WriteResult) => {
    c.header(HEADER.transactionId, context.transactionId);
    if (result.replayed) c.header(HEADER.idempotentHit, 'true');
    if (result.txid !== undefined) c.header(HEADER.txid, String(result.txid));
    return presentTrackedRow(result.entity);
  };

  return new OpenAPIHono<AppEnv>()
    .openapi(list, async (c) => {
      const result = await listTracked(
        c.get('deps').db,
        definition,
        currentOrganization(c).id,
        c.req.valid('query'),
      );
      return c.json({ items: result.items.map(presentTrackedRow), nextCursor: result.nextCursor }, 200);
    })
    .openapi(create, async (c) => {
      const context = writeContext(c, c.req.valid('header'));
      const result = await createTracked(c.get('deps').db, definition, context, c.req.valid('json'));
      const entity = answer(c, context, result);
      return result.replayed ? c.json(entity, 200) : c.json(entity, 201);
    })
    .openapi(get, async (c) => {
      const { id } = c.req.valid('param');
      return c.json(
        presentTrackedRow(await getTracked(c.get('deps').db, definition, currentOrganization(c).id, id)),
        200,
      );
    })
    .openapi(update, async (c) => {
      const context = writeContext(c, c.req.valid('header'));
      const result = await updateTracked(
        c.get('deps').db,
        definition,
        context,
        c.req.valid('param').id,
        c.req.valid('json'),
      );
      return c.json(answer(c, context, result), 200);
    })
    .openapi(remove, async (c) => {
      const context = writeContext(c, c.req.valid('header'));
      const result = await deleteTracked(c.get('deps').db, definition, context, c.req.valid('param').id);
      return c.json(answer(c, context, result), 200);
    });
}

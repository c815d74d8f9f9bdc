import { createRoute, z } from '@hono/zod-openapi';
import { requireMember } from '../../core/guards.ts';
import { bearerSecurity, ErrorSchema, errorResponses, jsonContent, OrgParam } from '../../core/openapi.ts';
import { ID_PATTERN } from '../../core/protocol.ts';
import { trackedEntitySchema } from '../../core/tracked/tracked-entity.ts';
import { ConflictSchema, TransactionHeadersSchema, writeHeaders } from '../../core/tracked/tracked-routes.ts';
import { trackedEntities } from '../../entities.ts';

/** An undo answers the entity it changed, of whichever tracked type. */
const UndoneEntity = z.union(
  trackedEntities.map((entity) => trackedEntitySchema(entity.singular, entity.fields)),
);

export const undoTransactionRoute = createRoute({
  middleware: [requireMember],
  security: bearerSecurity,
  tags: ['activities'],
  operationId: 'undoTransaction',
  method: 'post',
  path: '/organizations/{org}/transactions/{transactionId}/undo',
  description:
    'Applies the inverse of a recorded transaction as a new tracked write with its own X-Transaction-Id ' +
    '(idempotent, audited; its activity names the undone transaction in `undoesTransactionId`): a create is ' +
    'soft-deleted, an update has its changed fields set back, a delete is restored. Only while the entity is ' +
    'still at the version that transaction produced.',
  request: {
    params: OrgParam.extend({
      transactionId: z
        .string()
        .regex(ID_PATTERN)
        .openapi({ param: { name: 'transactionId', in: 'path' }, description: 'The transaction to undo' }),
    }),
    headers: TransactionHeadersSchema,
  },
  responses: {
    200: {
      ...jsonContent(UndoneEntity, 'Undone (or a replay of this undo): the entity now'),
      headers: writeHeaders,
    },
    404: jsonContent(
      ErrorSchema,
      "Unknown transaction, another organization's, or its entity is gone (NOT_FOUND)",
    ),
    409: jsonContent(
      ConflictSchema.extend({ missingKeys: z.array(z.string()).optional() }).openapi('UndoConflictError'),
      'TRANSACTION_CONFLICT (the entity changed since; serverVersion), PREVIOUS_VALUES_NOT_KEPT, ' +
        'TRANSACTION_NOT_RECORDED (not in the activity log yet: retry), TRANSACTION_ID_REUSED',
    ),
    ...errorResponses(400, 401),
  },
});

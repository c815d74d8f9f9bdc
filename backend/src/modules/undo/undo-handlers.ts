import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../core/app-env.ts';
import { currentOrganization, currentUser } from '../../core/guards.ts';
import { HEADER } from '../../core/protocol.ts';
import { presentTrackedRow } from '../../core/tracked/tracked-operations.ts';
import { resolveTransactionHeaders } from '../../core/tracked/transaction-headers.ts';
import { undoTransaction } from './undo-operations.ts';
import { undoTransactionRoute } from './undo-routes.ts';

export const undoHandlers = new OpenAPIHono<AppEnv>().openapi(undoTransactionRoute, async (c) => {
  const context = {
    ...resolveTransactionHeaders(c.req.valid('header')),
    organizationId: currentOrganization(c).id,
    userId: currentUser(c).id,
  };
  const result = await undoTransaction(c.get('deps'), context, c.req.valid('param').transactionId);
  c.header(HEADER.transactionId, context.transactionId);
  if (result.replayed) c.header(HEADER.idempotentHit, 'true');
  if (result.txid !== undefined) c.header(HEADER.txid, String(result.txid));
  return c.json(presentTrackedRow(result.entity), 200);
});

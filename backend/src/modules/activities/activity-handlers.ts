import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../core/app-env.ts';
import { errorBody } from '../../core/errors.ts';
import { currentOrganization } from '../../core/guards.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { findTransactionActivity, listActivities, readCounts } from './activity-operations.ts';
import {
  activityStreamRoute,
  countsRoute,
  listActivitiesRoute,
  transactionStatusRoute,
} from './activity-routes.ts';
import { streamActivities } from './activity-stream.ts';

export const activityHandlers = new OpenAPIHono<AppEnv>()
  .openapi(listActivitiesRoute, async (c) =>
    c.json(await listActivities(c.get('deps').sql, currentOrganization(c).id, c.req.valid('query')), 200),
  )
  .openapi(transactionStatusRoute, async (c) => {
    const { transactionId } = c.req.valid('param');
    const activity = await findTransactionActivity(
      c.get('deps').sql,
      currentOrganization(c).id,
      transactionId,
    );
    if (activity) return c.json({ transactionId, status: 'applied' as const, activity }, 200);
    const message = 'No activity records this transaction (yet)';
    return c.json(
      { ...errorBody(404, ERROR_CODE.notFound, message), transactionId, status: 'unknown' as const },
      404,
    );
  })
  .openapi(countsRoute, async (c) => c.json(await readCounts(c.get('deps'), currentOrganization(c).id), 200))
  .openapi(activityStreamRoute, (c) => {
    const after = c.req.valid('header')['last-event-id'] ?? c.req.valid('query').after ?? null;
    return streamActivities(c, currentOrganization(c).id, after);
  });

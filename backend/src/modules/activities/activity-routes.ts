import { createRoute, z } from '@hono/zod-openapi';
import { requireMember } from '../../core/guards.ts';
import { liveStream } from '../../core/live-stream.ts';
import { bearerSecurity, errorResponses, jsonContent, OrgParam } from '../../core/openapi.ts';
import {
  ACTIVITY_CURSOR,
  ActivityPageSchema,
  ActivityQuery,
  CountsSchema,
  TransactionStatusSchema,
  UnknownTransactionSchema,
} from './activity-schema.ts';

const guarded = { middleware: [requireMember], security: bearerSecurity, tags: ['activities'] };

export const listActivitiesRoute = createRoute({
  ...guarded,
  operationId: 'listActivities',
  method: 'get',
  path: '/organizations/{org}/activities',
  request: { params: OrgParam, query: ActivityQuery },
  responses: {
    200: jsonContent(ActivityPageSchema, 'Activities, oldest first'),
    ...errorResponses(400, 401, 404),
  },
});

export const transactionStatusRoute = createRoute({
  ...guarded,
  operationId: 'getTransactionStatus',
  method: 'get',
  path: '/organizations/{org}/transactions/{transactionId}',
  request: {
    params: OrgParam.extend({
      transactionId: z
        .string()
        .min(1)
        .max(64)
        .openapi({ param: { name: 'transactionId', in: 'path' } }),
    }),
  },
  responses: {
    200: jsonContent(TransactionStatusSchema, 'The CDC worker recorded this transaction'),
    404: jsonContent(
      UnknownTransactionSchema,
      'Not recorded (yet): not applied, or the worker has not caught up',
    ),
    ...errorResponses(401),
  },
});

export const countsRoute = createRoute({
  ...guarded,
  operationId: 'getCounts',
  method: 'get',
  path: '/organizations/{org}/counts',
  request: { params: OrgParam },
  responses: { 200: jsonContent(CountsSchema, 'Live entities per type'), ...errorResponses(401, 404) },
});

export const activityStreamRoute = createRoute({
  ...guarded,
  middleware: [requireMember, liveStream(() => 'sse')],
  operationId: 'streamActivities',
  method: 'get',
  path: '/organizations/{org}/activities/stream',
  request: {
    params: OrgParam,
    query: z.object({ after: z.string().regex(ACTIVITY_CURSOR).optional() }),
    headers: z.object({ 'last-event-id': z.string().regex(ACTIVITY_CURSOR).optional() }),
  },
  responses: {
    200: {
      content: { 'text/event-stream': { schema: z.string() } },
      description:
        'Server-Sent Events: `connected` {offset}, `activity` (id: cursor), `counts` (at most ~2/s), `: heartbeat` every 15 s',
    },
    ...errorResponses(400, 401, 404, 429),
  },
});

import { createRoute, z } from '@hono/zod-openapi';
import { CDC_HEALTH_WORDS, CDC_STATUS_NAMES } from '@sync/db/cdc-status';
import { requireMetricsAccess } from '../../core/guards.ts';
import { errorResponses, jsonContent } from '../../core/openapi.ts';

export const HealthSchema = z
  .object({
    status: z.enum(['ok', 'degraded']),
    db: z.enum(['ok', 'down']),
    cdc: z.object({
      status: z.enum(CDC_HEALTH_WORDS).openapi({
        description:
          '`starting` until a CDC worker streams from the slot (it exists from the first migration, so no change is lost meanwhile), then `streaming`; `lagging` while a streaming worker holds back more than 16 MiB of WAL; `down` when no worker streams (it stopped, or the slot is missing or lost and the next start resyncs) or the database is unreachable',
      }),
      detail: z.enum(CDC_STATUS_NAMES).nullable().openapi({
        description:
          'The worker state behind `status`: `stopped` (a worker streamed and is gone), `missing` (no slot), `lost` (the slot was invalidated); null when the database is unreachable',
      }),
      lagBytes: z.number(),
      lastEventAt: z.string().nullable(),
    }),
  })
  .openapi('Health');

export const healthRoute = createRoute({
  operationId: 'getHealth',
  tags: ['service'],
  method: 'get',
  path: '/health',
  responses: {
    200: jsonContent(HealthSchema, 'The API and its database are up'),
    503: jsonContent(HealthSchema, 'The database is unreachable'),
  },
});

export const metricsRoute = createRoute({
  operationId: 'getMetrics',
  tags: ['service'],
  method: 'get',
  path: '/metrics',
  middleware: [requireMetricsAccess] as const,
  security: [{ bearerAuth: [] }],
  description: 'With METRICS_TOKEN set, a bearer token equal to it; without, loopback clients only.',
  responses: {
    200: { content: { 'text/plain': { schema: z.string() } }, description: 'Prometheus text format' },
    ...errorResponses(401, 403),
  },
});

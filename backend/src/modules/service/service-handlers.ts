import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../core/app-env.ts';
import { readHealth } from './service-operations.ts';
import { healthRoute, metricsRoute } from './service-routes.ts';

export const serviceHandlers = new OpenAPIHono<AppEnv>()
  .openapi(healthRoute, async (c) => {
    const health = await readHealth(c.get('deps'));
    const ok = health.db === 'ok';
    return c.json({ status: ok ? ('ok' as const) : ('degraded' as const), ...health }, ok ? 200 : 503);
  })
  .openapi(metricsRoute, async (c) => {
    await readHealth(c.get('deps'));
    const { registry } = c.get('deps').metrics;
    return c.text(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });

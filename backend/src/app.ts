/**
 * The HTTP application: middleware with one job each, composed here, then the modules.
 * Every error leaves through `errorResponse` as `{ error, code, message }`.
 */

import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import type { AddedHeaders, AppDeps, AppEnv } from './core/app-env.ts';
import { AppError, errorBody, errorResponse } from './core/errors.ts';
import { ERROR_CODE, HEADER, SESSION_COOKIE } from './core/protocol.ts';
import { applyAddedHeaders, isSentStraight } from './core/straight-response.ts';
import { findTextIssue } from './core/text-rule.ts';
import { trackedEntityRoutes } from './core/tracked/tracked-routes.ts';
import { trackedEntities } from './entities.ts';
import { activityHandlers } from './modules/activities/activity-handlers.ts';
import { authHandlers } from './modules/auth/auth-handlers.ts';
import { organizationHandlers } from './modules/organizations/organization-handlers.ts';
import { apiDocs } from './modules/service/api-docs.ts';
import { serviceHandlers } from './modules/service/service-handlers.ts';
import { EXPOSED_HEADERS } from './modules/shapes/electric-protocol.ts';
import { shapeRoutes } from './modules/shapes/shape-handlers.ts';
import { undoHandlers } from './modules/undo/undo-handlers.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * A request refused before its body was read (401, 404, 413, a bad header) leaves that body in
 * the socket, and HTTP/1.1 lets the server only drain it or close: the server drains for a
 * moment, then drops the socket. Announce the close, or a keep-alive client sends its next
 * request into a dying connection ("other side closed").
 */
const closeAfterUnreadBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (isSentStraight(c.res)) return;
  const length = c.req.header('content-length');
  const sentBody =
    (length !== undefined && length !== '0') || c.req.header('transfer-encoding') !== undefined;
  if (sentBody && Object.keys(c.req.bodyCache).length === 0) c.header('connection', 'close');
};

const tooLarge = (c: Context) =>
  c.json(errorBody(413, ERROR_CODE.payloadTooLarge, 'Request body is larger than 1 MiB'), 413);
const streamedBodyLimit = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: tooLarge });

/**
 * 413 for bodies over 1 MiB. Hono's bodyLimit reads `raw.body`, which makes the Node adapter
 * build a full web Request and stream for every request (a third of a tracked write's CPU), so
 * it only sees chunked bodies; a Content-Length is enforced by Node's HTTP parser and checked
 * here, and a request with neither has no body.
 */
const limitBodySize: MiddlewareHandler<AppEnv> = async (c, next) => {
  const length = c.req.header('content-length');
  if (c.req.header('transfer-encoding') !== undefined) return streamedBodyLimit(c, next);
  if (length !== undefined && Number(length) > MAX_BODY_BYTES) return tooLarge(c);
  await next();
};

/**
 * CORS for the browser origins in CORS_ORIGINS. Hono's `cors` answers preflights; on every
 * other response the same headers are added to the finished response's own headers. Hono's
 * middleware sets them through `c.res` and `c.header` around the handler instead, which turns
 * the Node adapter's lightweight response (a string body written in one call) into a web
 * Response whose body stream the adapter must then pump: a ReadableStream per response, the
 * largest fixed cost of a small one, and 1,000 of them when one change answers 1,000 long-polls.
 * The headers of each origin are built once, and kept on the context for a response written
 * straight to Node (core/straight-response.ts), which the middleware does not see.
 */
function corsFor(origins: string[], exposeHeaders: string[]): MiddlewareHandler<AppEnv> {
  const preflight = cors({ origin: origins, credentials: true, exposeHeaders });
  const exposed = exposeHeaders.join(',');
  const common: AddedHeaders['set'] = [
    ['access-control-allow-credentials', 'true'],
    ['access-control-expose-headers', exposed],
  ];
  const forOrigin = new Map<string, AddedHeaders>(
    origins.map((origin) => [
      origin,
      { set: [['access-control-allow-origin', origin], ...common], append: [['vary', 'Origin']] },
    ]),
  );
  const otherOrigins: AddedHeaders = { set: common, append: [['vary', 'Origin']] };
  // no Origin, no browser's cross-origin request: nothing to allow, but a cache in front must
  // still keep this answer from a browser's request that has one
  const withoutOrigin: AddedHeaders = { set: [], append: [['vary', 'Origin']] };
  return async (c, next) => {
    if (c.req.method === 'OPTIONS') return preflight(c, next);
    const origin = c.req.header('origin');
    const added = origin === undefined ? withoutOrigin : (forOrigin.get(origin) ?? otherOrigins);
    c.set('addedHeaders', added);
    await next();
    if (!isSentStraight(c.res)) applyAddedHeaders(c.res.headers, added);
  };
}

export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({
    // Invalid input of any route: headers get INVALID_HEADER, a malformed path id cannot name
    // anything (404), everything else is VALIDATION_FAILED with the issues, naming the field.
    defaultHook: (result) => {
      if (result.success) {
        // every text field of every body meets one rule (core/text-rule.ts): none is stored altered
        const issue = result.target === 'json' ? findTextIssue(result.data) : null;
        if (!issue) return;
        const field = issue.path.join('.') || 'body';
        throw new AppError(400, ERROR_CODE.validationFailed, `Invalid json (${field}: ${issue.message})`, {
          issues: [issue],
        });
      }
      const issues = result.error.issues.map((issue) => ({
        path: issue.path.map(String),
        message: issue.message,
      }));
      if (result.target === 'param') throw AppError.notFound();
      const code = result.target === 'header' ? ERROR_CODE.invalidHeader : ERROR_CODE.validationFailed;
      const where = issues[0] ? ` (${issues[0].path.join('.') || result.target}: ${issues[0].message})` : '';
      throw new AppError(400, code, `Invalid ${result.target}${where}`, { issues });
    },
  });

  app.use('*', requestId(), async (c, next) => {
    c.set('deps', deps);
    const started = performance.now();
    await next();
    const route = c.req.routePath;
    deps.metrics.requests.inc({ method: c.req.method, route, status: c.res.status });
    deps.metrics.latency.observe({ method: c.req.method, route }, (performance.now() - started) / 1000);
  });
  app.use('/api/*', closeAfterUnreadBody);
  app.use(
    '/api/*',
    corsFor(deps.config.corsOrigins, [
      ...EXPOSED_HEADERS,
      HEADER.transactionId,
      HEADER.idempotentHit,
      HEADER.txid,
    ]),
  );
  app.use('/api/*', limitBodySize);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'cookieAuth', {
    type: 'apiKey',
    in: 'cookie',
    name: SESSION_COOKIE,
  });

  app.route('/api', serviceHandlers);
  app.route('/api', authHandlers);
  app.route('/api', organizationHandlers);
  for (const entity of trackedEntities) {
    app.route('/api', trackedEntityRoutes(entity));
    app.route('/api', shapeRoutes(entity));
  }
  app.route('/api', activityHandlers);
  app.route('/api', undoHandlers);

  app.doc31('/api/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Sync engine API',
      version: '1.0.0',
      description:
        'Tracked product entities with idempotent, lock-checked writes, an activity feed and live shapes.',
    },
  });
  app.route('/api', apiDocs);

  app.notFound((c) =>
    c.json(errorBody(404, ERROR_CODE.notFound, `No route for ${c.req.method} ${c.req.path}`), 404),
  );
  app.onError((err, c) =>
    errorResponse(c, err, (unexpected) => deps.logger.error({ err: unexpected }, 'unexpected error')),
  );
  return app;
}

export type App = ReturnType<typeof createApp>;

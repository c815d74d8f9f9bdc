/**
 * `/api/docs`: Swagger UI for `/api/openapi.json`, its files served from the installed
 * `swagger-ui-dist` package (no CDN: works offline, and nothing runs that we did not ship).
 *
 *   GET /api/docs                        the page: two files and our initializer, no inline script
 *   GET /api/docs/swagger-ui.css         ┐
 *   GET /api/docs/swagger-ui-bundle.js   ├ from node_modules/swagger-ui-dist
 *   GET /api/docs/docs-init.js           ┘ SwaggerUIBundle({ url: the page's data-openapi-url })
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import type { AppEnv } from '../../core/app-env.ts';
import { pageSecurityHeaders, WEB_APP_CSP } from '../../web-app.ts';

const DIST = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js'];

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Sync engine API</title>
    <link rel="stylesheet" href="/api/docs/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui" data-openapi-url="/api/openapi.json"></div>
    <script src="/api/docs/swagger-ui-bundle.js"></script>
    <script src="/api/docs/docs-init.js"></script>
  </body>
</html>
`;

const INIT = `const root = document.getElementById('swagger-ui');
window.ui = SwaggerUIBundle({ url: root.dataset.openapiUrl, domNode: root });
`;

const asset = serveStatic({ root: DIST, rewriteRequestPath: (path) => path.replace(/^\/api\/docs/, '') });

export const apiDocs = new Hono<AppEnv>()
  // the web app's policy fits: scripts only from these files, inline styles, data: images
  .use('/docs', pageSecurityHeaders(WEB_APP_CSP))
  .use('/docs/*', pageSecurityHeaders(WEB_APP_CSP))
  .get('/docs', (c) => c.html(PAGE))
  .get('/docs/docs-init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript; charset=utf-8' }))
  .get('/docs/:file', async (c, next) => {
    if (!ASSETS.includes(c.req.param('file'))) return next();
    return asset(c, next);
  });

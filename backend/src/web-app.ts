/**
 * The web app on the API's port (`npm start`): its built files, and its `index.html` for every
 * deep link so that the app's own routes load from any URL.
 *
 *   GET|HEAD /api/…                         the API (never served from here)
 *   GET|HEAD /assets/index-1a2b.js, /x.ico  that file, or 404
 *   GET|HEAD /, /o/demo, /API/health        index.html (no file extension: a route of the app)
 *   other methods                           404
 *
 * `..`, `//`, backslashes and encoded separators never reach the file system (the library
 * refuses them: 404). Every answer carries the security headers of a same-origin app.
 */
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono, MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { AppEnv } from './core/app-env.ts';

/**
 * For a Vite-built React app with a service worker that calls its API and SSE on the same
 * origin. Inline styles are allowed (React's `style` props); scripts only from files.
 */
export const WEB_APP_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  workerSrc: ["'self'"],
  manifestSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
};

/** The security headers of pages this server renders; `csp` differs per page. */
export function pageSecurityHeaders(csp: typeof WEB_APP_CSP): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: csp,
    xFrameOptions: 'DENY',
    referrerPolicy: 'same-origin',
    // TLS is the business of the proxy in front; HSTS over plain HTTP is ignored anyway
    strictTransportSecurity: false,
  });
}

const isApiPath = (path: string) => path === '/api' || path.startsWith('/api/');
const hasFileExtension = (path: string) => /\.[^/]*$/.test(path);

export function mountWebApp(app: Hono<AppEnv>, root: string): void {
  const headers = pageSecurityHeaders(WEB_APP_CSP);
  const file = serveStatic({ root });
  const index = serveStatic({ root, path: 'index.html' });
  app.on(['GET', 'HEAD'], '*', async (c, next) => {
    if (isApiPath(c.req.path)) return next();
    const serve = hasFileExtension(c.req.path) ? file : index;
    await headers(c, async () => {
      // a found file is returned; a missing one went on to the app's 404, which set c.res
      const served = await serve(c, next);
      if (served instanceof Response) c.res = served;
    });
  });
}

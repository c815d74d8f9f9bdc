/**
 * Route guards, declared on route definitions (`middleware: [requireUser]`) so reading a route
 * says who may call it.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { AppEnv, OrganizationAccess, SessionUser } from './app-env.ts';
import { clientAddress, isLoopback } from './client-address.ts';
import { AppError } from './errors.ts';
import { ERROR_CODE, SESSION_COOKIE } from './protocol.ts';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

function bearerToken(c: Context): string | undefined {
  const header = c.req.header('authorization');
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

const unauthenticated = () =>
  new AppError(
    401,
    ERROR_CODE.unauthenticated,
    'Sign in first: a valid bearer token or session cookie is required',
  );

interface Credentials {
  tokenHash: string;
  via: 'bearer' | 'cookie';
}

/** The bearer token or, failing that, the session cookie; 401 when neither is usable. */
function credentialsOf(c: Context<AppEnv>): Credentials {
  const bearer = bearerToken(c);
  const token = bearer ?? getCookie(c, SESSION_COOKIE);
  if (!token || token.length > 200) throw unauthenticated();
  return { tokenHash: hashToken(token), via: bearer ? 'bearer' : 'cookie' };
}

function signIn(c: Context<AppEnv>, user: SessionUser, credentials: Credentials): void {
  c.set('user', user);
  c.set('sessionTokenHash', credentials.tokenHash);
  if (credentials.via === 'cookie') rejectCrossSiteWrite(c);
}

/** Resolves the session from the bearer token or the session cookie, or answers 401. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  const credentials = credentialsOf(c);
  const [user] = await c.get('deps').sql<SessionUser[]>`
    select u.id, u.email, u.name
    from sessions s join users u on u.id = s.user_id
    where s.token_hash = ${credentials.tokenHash} and s.expires_at > now()`;
  if (!user) throw unauthenticated();
  signIn(c, user, credentials);
  await next();
};

/** Organization ids and slugs share this alphabet; anything else cannot name an organization. */
const ORG_REFERENCE = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * A signed-in member of `{org}` (id or slug), resolved with the session in one query. Not a
 * member looks exactly like not existing: 404, so ids of other tenants are not confirmed.
 * Credentials are judged first: without a valid session the answer is 401 whatever `{org}` is.
 */
export const requireMember: MiddlewareHandler<AppEnv> = async (c, next) => {
  const credentials = credentialsOf(c);
  const param = c.req.param('org') ?? '';
  const org = ORG_REFERENCE.test(param) ? param : '';
  const [row] = await c.get('deps').sql<(SessionUser & { organization: OrganizationAccess | null })[]>`
    select u.id, u.email, u.name, (
      select json_build_object('id', o.id, 'slug', o.slug, 'name', o.name, 'role', m.role)
      from organizations o join memberships m on m.organization_id = o.id and m.user_id = u.id
      where o.id = ${org} or o.slug = ${org}
      limit 1
    ) as organization
    from sessions s join users u on u.id = s.user_id
    where s.token_hash = ${credentials.tokenHash} and s.expires_at > now()`;
  if (!row) throw unauthenticated();
  const { organization, ...user } = row;
  signIn(c, user, credentials);
  if (!organization) throw AppError.notFound('Organization');
  c.set('organization', organization);
  await next();
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF: a cookie rides along on cross-site requests, a bearer token does not. A cookie-
 * authenticated write must come from our own origin or one allowed by CORS_ORIGINS (browsers
 * send Origin on writes; Sec-Fetch-Site when Origin is absent). Non-browser clients send neither.
 */
function rejectCrossSiteWrite(c: Context<AppEnv>): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const origin = c.req.header('origin');
  const fetchSite = c.req.header('sec-fetch-site');
  const allowed =
    origin !== undefined
      ? safeHost(origin) === c.req.header('host') || c.get('deps').config.corsOrigins.includes(origin)
      : fetchSite === undefined || fetchSite === 'same-origin' || fetchSite === 'none';
  if (!allowed) {
    throw new AppError(403, ERROR_CODE.csrfRejected, 'Cross-site request with a session cookie was rejected');
  }
}

function safeHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (currentOrganization(c).role !== 'admin') {
    throw new AppError(403, ERROR_CODE.forbidden, 'Only admins of this organization may do this');
  }
  await next();
};

export function currentUser(c: Context<AppEnv>): SessionUser {
  const user = c.get('user');
  if (!user) throw unauthenticated();
  return user;
}

export function currentOrganization(c: Context<AppEnv>): OrganizationAccess {
  const organization = c.get('organization');
  if (!organization) throw AppError.notFound('Organization');
  return organization;
}

/**
 * `/api/metrics` for Prometheus: with METRICS_TOKEN set, `Authorization: Bearer <token>` is
 * required; without one, only clients on this machine (loopback) may read it.
 */
export const requireMetricsAccess: MiddlewareHandler<AppEnv> = async (c, next) => {
  const { metricsToken } = c.get('deps').config;
  if (metricsToken) {
    const given = createHash('sha256')
      .update(bearerToken(c) ?? '')
      .digest();
    if (!timingSafeEqual(given, createHash('sha256').update(metricsToken).digest())) {
      throw new AppError(
        401,
        ERROR_CODE.unauthenticated,
        'Metrics need Authorization: Bearer <METRICS_TOKEN>',
      );
    }
  } else if (!isLoopback(clientAddress(c))) {
    throw new AppError(
      403,
      ERROR_CODE.forbidden,
      'Metrics are readable from this machine only; set METRICS_TOKEN to scrape them from elsewhere',
    );
  }
  await next();
};

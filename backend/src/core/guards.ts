/**
 * Route guards, declared on route definitions (`middleware: [requireUser]`) so reading a route
 * says who may call it.
 */

import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { AppEnv, OrganizationAccess, SessionUser } from './app-env.ts';
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

/** Resolves the session from the bearer token or the session cookie, or answers 401. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  const bearer = bearerToken(c);
  const token = bearer ?? getCookie(c, SESSION_COOKIE);
  if (!token || token.length > 200) throw unauthenticated();
  const tokenHash = hashToken(token);
  const { sql } = c.var.deps;
  const [row] = await sql<SessionUser[]>`
    select u.id, u.email, u.name
    from sessions s join users u on u.id = s.user_id
    where s.token_hash = ${tokenHash} and s.expires_at > now()`;
  if (!row) throw unauthenticated();
  c.set('user', row);
  c.set('sessionTokenHash', tokenHash);
  c.set('authenticatedBy', bearer ? 'bearer' : 'cookie');
  if (!bearer) rejectCrossSiteWrite(c);
  await next();
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF: a cookie rides along on cross-site requests, a bearer token does not. A cookie-
 * authenticated write must come from our own origin (browsers send Origin / Sec-Fetch-Site).
 */
function rejectCrossSiteWrite(c: Context): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const fetchSite = c.req.header('sec-fetch-site');
  const origin = c.req.header('origin');
  const host = c.req.header('host');
  const crossSite =
    (fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none') ||
    (origin !== undefined && safeHost(origin) !== host);
  if (crossSite) {
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

/**
 * Resolves `{org}` (id or slug) to an organization the caller belongs to. Not a member looks
 * exactly like not existing: 404, so ids of other tenants are not confirmed.
 */
export const requireMember: MiddlewareHandler<AppEnv> = async (c, next) => {
  const user = currentUser(c);
  const org = c.req.param('org');
  if (!org || org.length > 100) throw AppError.notFound('Organization');
  const { sql } = c.var.deps;
  const [row] = await sql<OrganizationAccess[]>`
    select o.id, o.slug, o.name, m.role
    from organizations o join memberships m on m.organization_id = o.id and m.user_id = ${user.id}
    where o.id = ${org} or o.slug = ${org}
    limit 1`;
  if (!row) throw AppError.notFound('Organization');
  c.set('organization', row);
  await next();
};

export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (currentOrganization(c).role !== 'admin') {
    throw new AppError(403, ERROR_CODE.forbidden, 'Only admins of this organization may do this');
  }
  await next();
};

export function currentUser(c: Context<AppEnv>): SessionUser {
  const user = c.var.user;
  if (!user) throw unauthenticated();
  return user;
}

export function currentOrganization(c: Context<AppEnv>): OrganizationAccess {
  const organization = c.var.organization;
  if (!organization) throw AppError.notFound('Organization');
  return organization;
}

import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { AppEnv } from '../../core/app-env.ts';
import { currentUser } from '../../core/guards.ts';
import { SESSION_COOKIE } from '../../core/protocol.ts';
import { describeMe, type NewSession, signIn, signOut, signUp } from './auth-operations.ts';
import { meRoute, signInRoute, signOutRoute, signUpRoute } from './auth-routes.ts';

function setSessionCookie(c: Context<AppEnv>, session: NewSession) {
  setCookie(c, SESSION_COOKIE, session.token, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: c.get('deps').config.production,
    path: '/',
    expires: session.expiresAt,
  });
}

export const authHandlers = new OpenAPIHono<AppEnv>()
  .openapi(signUpRoute, async (c) => {
    const session = await signUp(c.get('deps'), c.req.valid('json'));
    setSessionCookie(c, session);
    return c.json({ user: session.user, token: session.token }, 201);
  })
  .openapi(signInRoute, async (c) => {
    const session = await signIn(c.get('deps'), c.req.valid('json'));
    setSessionCookie(c, session);
    return c.json({ user: session.user, token: session.token }, 200);
  })
  .openapi(signOutRoute, async (c) => {
    await signOut(c.get('deps'), c.get('sessionTokenHash') ?? '');
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.body(null, 204);
  })
  .openapi(meRoute, async (c) => c.json(await describeMe(c.get('deps'), currentUser(c)), 200));

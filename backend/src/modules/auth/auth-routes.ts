import { createRoute } from '@hono/zod-openapi';
import { requireUser } from '../../core/guards.ts';
import { bearerSecurity, errorResponses, jsonContent } from '../../core/openapi.ts';
import { MeSchema, SessionSchema, SignInBody, SignUpBody } from './auth-schema.ts';
import { limitFailedSignIns } from './sign-in-limits.ts';

export const signUpRoute = createRoute({
  operationId: 'signUp',
  tags: ['auth'],
  method: 'post',
  path: '/auth/sign-up',
  request: { body: { content: { 'application/json': { schema: SignUpBody } }, required: true } },
  responses: {
    201: jsonContent(SessionSchema, 'Account created and signed in'),
    ...errorResponses(400, 409),
  },
});

export const signInRoute = createRoute({
  operationId: 'signIn',
  tags: ['auth'],
  method: 'post',
  path: '/auth/sign-in',
  middleware: [limitFailedSignIns] as const,
  request: { body: { content: { 'application/json': { schema: SignInBody } }, required: true } },
  responses: {
    200: jsonContent(SessionSchema, 'Signed in; also sets the HttpOnly session cookie'),
    ...errorResponses(400, 401, 429),
  },
});

export const signOutRoute = createRoute({
  operationId: 'signOut',
  tags: ['auth'],
  method: 'post',
  path: '/auth/sign-out',
  middleware: [requireUser] as const,
  security: bearerSecurity,
  responses: { 204: { description: 'Signed out; the token stops working' }, ...errorResponses(401) },
});

export const meRoute = createRoute({
  operationId: 'getMe',
  tags: ['auth'],
  method: 'get',
  path: '/me',
  middleware: [requireUser] as const,
  security: bearerSecurity,
  responses: {
    200: jsonContent(MeSchema, 'The signed-in user and their organizations'),
    ...errorResponses(401),
  },
});

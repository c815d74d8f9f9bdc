import { z } from '@hono/zod-openapi';

export const UserSchema = z
  .object({ id: z.string(), email: z.string(), name: z.string(), createdAt: z.iso.datetime().optional() })
  .openapi('User');

export const SignUpBody = z
  .object({
    email: z.email().max(254),
    password: z.string().min(8).max(1024),
    name: z.string().trim().min(1).max(200).optional(),
  })
  .openapi('SignUpBody');

export const SignInBody = z
  .object({ email: z.string().max(254), password: z.string().max(1024) })
  .openapi('SignInBody');

export const SessionSchema = z.object({ user: UserSchema, token: z.string() }).openapi('Session');

export const MeSchema = z
  .object({
    user: UserSchema,
    organizations: z.array(
      z.object({ id: z.string(), slug: z.string(), name: z.string(), role: z.enum(['admin', 'member']) }),
    ),
  })
  .openapi('Me');

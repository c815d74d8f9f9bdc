import { z } from '@hono/zod-openapi';

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])$/;

export const OrganizationSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    role: z.enum(['admin', 'member']),
    createdAt: z.string(),
  })
  .openapi('Organization');

export const CreateOrganizationBody = z
  .object({ name: z.string().trim().min(1).max(200), slug: z.string().regex(SLUG_PATTERN) })
  .openapi('CreateOrganizationBody');

export const AddMemberBody = z
  .object({ email: z.string().max(254), role: z.enum(['admin', 'member']) })
  .openapi('AddMemberBody');

export const MemberParam = z.object({
  userId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .openapi({ param: { name: 'userId', in: 'path' }, description: 'Id of the member (a user id)' }),
});

export const ChangeRoleBody = z.object({ role: z.enum(['admin', 'member']) }).openapi('ChangeRoleBody');

export const MemberSchema = z
  .object({
    organizationId: z.string(),
    userId: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(['admin', 'member']),
  })
  .openapi('Member');

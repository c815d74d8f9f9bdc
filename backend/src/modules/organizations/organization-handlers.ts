import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../core/app-env.ts';
import { currentOrganization, currentUser } from '../../core/guards.ts';
import {
  addMember,
  createOrganization,
  getOrganization,
  listOrganizations,
} from './organization-operations.ts';
import {
  addMemberRoute,
  createOrganizationRoute,
  getOrganizationRoute,
  listOrganizationsRoute,
} from './organization-routes.ts';

export const organizationHandlers = new OpenAPIHono<AppEnv>()
  .openapi(createOrganizationRoute, async (c) =>
    c.json(await createOrganization(c.var.deps, currentUser(c), c.req.valid('json')), 201),
  )
  .openapi(listOrganizationsRoute, async (c) =>
    c.json({ items: await listOrganizations(c.var.deps, currentUser(c)) }, 200),
  )
  .openapi(getOrganizationRoute, async (c) =>
    c.json(await getOrganization(c.var.deps, currentOrganization(c)), 200),
  )
  .openapi(addMemberRoute, async (c) =>
    c.json(await addMember(c.var.deps, currentOrganization(c), c.req.valid('json')), 201),
  );

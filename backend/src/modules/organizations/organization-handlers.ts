import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../core/app-env.ts';
import { currentOrganization, currentUser } from '../../core/guards.ts';
import {
  addMember,
  changeMemberRole,
  createOrganization,
  getOrganization,
  listOrganizations,
  removeMember,
} from './organization-operations.ts';
import {
  addMemberRoute,
  changeMemberRoleRoute,
  createOrganizationRoute,
  getOrganizationRoute,
  listOrganizationsRoute,
  removeMemberRoute,
} from './organization-routes.ts';

export const organizationHandlers = new OpenAPIHono<AppEnv>()
  .openapi(createOrganizationRoute, async (c) =>
    c.json(await createOrganization(c.get('deps'), currentUser(c), c.req.valid('json')), 201),
  )
  .openapi(listOrganizationsRoute, async (c) =>
    c.json({ items: await listOrganizations(c.get('deps'), currentUser(c)) }, 200),
  )
  .openapi(getOrganizationRoute, async (c) =>
    c.json(await getOrganization(c.get('deps'), currentOrganization(c)), 200),
  )
  .openapi(addMemberRoute, async (c) =>
    c.json(await addMember(c.get('deps'), currentOrganization(c), c.req.valid('json')), 201),
  )
  .openapi(changeMemberRoleRoute, async (c) => {
    const { userId } = c.req.valid('param');
    const { role } = c.req.valid('json');
    return c.json(
      await changeMemberRole(c.get('deps'), currentOrganization(c), currentUser(c), userId, role),
      200,
    );
  })
  .openapi(removeMemberRoute, async (c) => {
    await removeMember(c.get('deps'), currentOrganization(c), currentUser(c), c.req.valid('param').userId);
    return c.body(null, 204);
  });

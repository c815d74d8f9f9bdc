import { createRoute, z } from '@hono/zod-openapi';
import { requireAdmin, requireMember, requireUser } from '../../core/guards.ts';
import { bearerSecurity, ErrorSchema, errorResponses, jsonContent, OrgParam } from '../../core/openapi.ts';
import {
  AddMemberBody,
  ChangeRoleBody,
  CreateOrganizationBody,
  MemberParam,
  MemberSchema,
  OrganizationSchema,
} from './organization-schema.ts';

export const createOrganizationRoute = createRoute({
  operationId: 'createOrganization',
  tags: ['organizations'],
  method: 'post',
  path: '/organizations',
  middleware: [requireUser] as const,
  security: bearerSecurity,
  request: { body: { content: { 'application/json': { schema: CreateOrganizationBody } }, required: true } },
  responses: {
    201: jsonContent(OrganizationSchema, 'Created; the caller is its admin'),
    ...errorResponses(400, 401, 409),
  },
});

export const listOrganizationsRoute = createRoute({
  operationId: 'listOrganizations',
  tags: ['organizations'],
  method: 'get',
  path: '/organizations',
  middleware: [requireUser] as const,
  security: bearerSecurity,
  responses: {
    200: jsonContent(z.object({ items: z.array(OrganizationSchema) }), "The caller's organizations"),
    ...errorResponses(401),
  },
});

export const getOrganizationRoute = createRoute({
  operationId: 'getOrganization',
  tags: ['organizations'],
  method: 'get',
  path: '/organizations/{org}',
  middleware: [requireMember] as const,
  security: bearerSecurity,
  request: { params: OrgParam },
  responses: { 200: jsonContent(OrganizationSchema, 'The organization'), ...errorResponses(401, 404) },
});

export const addMemberRoute = createRoute({
  operationId: 'addMember',
  tags: ['organizations'],
  method: 'post',
  path: '/organizations/{org}/members',
  middleware: [requireMember, requireAdmin] as const,
  security: bearerSecurity,
  request: {
    params: OrgParam,
    body: { content: { 'application/json': { schema: AddMemberBody } }, required: true },
  },
  responses: { 201: jsonContent(MemberSchema, 'Member added'), ...errorResponses(400, 401, 403, 404, 409) },
});

export const changeMemberRoleRoute = createRoute({
  operationId: 'changeMemberRole',
  tags: ['organizations'],
  method: 'patch',
  path: '/organizations/{org}/members/{userId}',
  middleware: [requireMember, requireAdmin] as const,
  security: bearerSecurity,
  request: {
    params: OrgParam.extend(MemberParam.shape),
    body: { content: { 'application/json': { schema: ChangeRoleBody } }, required: true },
  },
  responses: {
    200: jsonContent(MemberSchema, 'Role changed'),
    ...errorResponses(400, 401, 403, 404),
    409: jsonContent(ErrorSchema, 'The last admin cannot be demoted (LAST_ADMIN)'),
  },
});

export const removeMemberRoute = createRoute({
  operationId: 'removeMember',
  tags: ['organizations'],
  method: 'delete',
  path: '/organizations/{org}/members/{userId}',
  middleware: [requireMember, requireAdmin] as const,
  security: bearerSecurity,
  request: { params: OrgParam.extend(MemberParam.shape) },
  responses: {
    204: { description: 'Removed; the member loses every open stream of the organization within seconds' },
    ...errorResponses(401, 403, 404),
    409: jsonContent(ErrorSchema, 'The last admin cannot be removed (LAST_ADMIN)'),
  },
});

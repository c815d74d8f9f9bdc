import { createRoute, z } from '@hono/zod-openapi';
import { requireAdmin, requireMember, requireUser } from '../../core/guards.ts';
import { bearerSecurity, errorResponses, jsonContent, OrgParam } from '../../core/openapi.ts';
import {
  AddMemberBody,
  CreateOrganizationBody,
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

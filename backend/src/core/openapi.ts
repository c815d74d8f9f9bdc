/** Building blocks shared by every route definition. */
import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.string(),
    code: z.string(),
    message: z.string(),
    issues: z
      .array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() }))
      .optional(),
  })
  .openapi('Error');

export function jsonContent<T extends z.ZodType>(schema: T, description: string) {
  return { content: { 'application/json': { schema } }, description };
}

export function errorResponses(...statuses: number[]) {
  const described: Record<number, string> = {
    400: 'Invalid input (VALIDATION_FAILED, INVALID_HEADER)',
    401: 'Not signed in (UNAUTHENTICATED)',
    403: 'Not allowed (FORBIDDEN, CSRF_REJECTED)',
    404: 'Not found (NOT_FOUND)',
    409: 'Conflict',
    413: 'Body over 1 MiB (PAYLOAD_TOO_LARGE)',
    429: 'Too many requests or open streams (RATE_LIMITED); wait `Retry-After` seconds',
  };
  return Object.fromEntries(statuses.map((s) => [s, jsonContent(ErrorSchema, described[s] ?? 'Error')]));
}

export const bearerSecurity: Record<string, string[]>[] = [{ bearerAuth: [] }, { cookieAuth: [] }];

export const OrgParam = z.object({
  org: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: 'org', in: 'path' }, description: 'Organization id or slug' }),
});

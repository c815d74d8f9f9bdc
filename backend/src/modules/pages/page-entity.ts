import { z } from '@hono/zod-openapi';
import { trackedPages } from '@sync/db/tracked-tables';
import { defineTrackedEntity } from '../../core/tracked/tracked-entity.ts';

const title = z.string().trim().min(1).max(500);
const content = z.string().max(500_000);

export const pageEntity = defineTrackedEntity({
  tracked: trackedPages,
  singular: 'Page',
  plural: 'pages',
  fields: { title: z.string(), content: z.string() },
  createBody: z.object({ title, content: content.optional() }).openapi('CreatePageBody'),
  updateBody: z.object({ title: title.optional(), content: content.optional() }).openapi('UpdatePageBody'),
});

import { z } from '@hono/zod-openapi';
import { pages } from '@sync/db/schema';
import { trackedAttachments } from '@sync/db/tracked-tables';
import { and, eq, isNull } from 'drizzle-orm';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { defineTrackedEntity, EntityIdSchema } from '../../core/tracked/tracked-entity.ts';

const fields = {
  pageId: EntityIdSchema.nullable(),
  filename: z.string().trim().min(1).max(255),
  contentType: z
    .string()
    .regex(/^[\w.+-]+\/[\w.+-]+(;.*)?$/, 'Expected a MIME type such as image/png')
    .max(255),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  url: z.url({ protocol: /^https?$/ }).max(2048),
};

export const attachmentEntity = defineTrackedEntity({
  tracked: trackedAttachments,
  singular: 'Attachment',
  plural: 'attachments',
  fields: { ...fields, pageId: z.string().nullable(), size: z.number() },
  createBody: z.object({ ...fields, pageId: fields.pageId.optional() }).openapi('CreateAttachmentBody'),
  updateBody: z.object(fields).partial().openapi('UpdateAttachmentBody'),
  // An attachment may only hang on a live page of its own organization.
  async checkReferences(db, organizationId, { pageId }) {
    // absent (an update leaving it) or null (no page): nothing to check
    if (typeof pageId !== 'string') return;
    const [page] = await db
      .select({ id: pages.id })
      .from(pages)
      .where(and(eq(pages.id, pageId), eq(pages.organizationId, organizationId), isNull(pages.deletedAt)));
    if (!page) {
      throw new AppError(400, ERROR_CODE.validationFailed, 'pageId must be a page of this organization', {
        issues: [{ path: ['pageId'], message: 'No such page in this organization' }],
      });
    }
  },
});

/** The product's tracked entities on the client: one `createSyncedEntity` call each. */
import type {
  Attachment,
  CreateAttachmentBody,
  CreatePageBody,
  Page,
  UpdateAttachmentBody,
  UpdatePageBody,
} from '../../api.gen/types.gen.ts';
import { createSyncedEntity } from './react.ts';

export const pages = createSyncedEntity<Page, CreatePageBody, UpdatePageBody>({
  name: 'page',
  path: 'pages',
});

export const attachments = createSyncedEntity<Attachment, CreateAttachmentBody, UpdateAttachmentBody>({
  name: 'attachment',
  path: 'attachments',
});

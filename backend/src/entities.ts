/** The product entities served by the tracked path. A new one is a definition added here. */
import type { TrackedEntityDefinition } from './core/tracked/tracked-entity.ts';
import { attachmentEntity } from './modules/attachments/attachment-entity.ts';
import { pageEntity } from './modules/pages/page-entity.ts';

export const trackedEntities: readonly TrackedEntityDefinition[] = [pageEntity, attachmentEntity];

/**
 * The inverse of a recorded transaction, pure: from the activity (as the API presents it) to the
 * write that undoes it. No database.
 */
import { describe, expect, it } from 'vitest';
import type { AppError } from '../src/core/errors.ts';
import type { TrackedEntityDefinition } from '../src/core/tracked/tracked-entity.ts';
import { inverseOfTransaction } from '../src/core/tracked/tracked-undo.ts';
import { trackedEntities } from '../src/entities.ts';

const entity = (type: string): TrackedEntityDefinition =>
  trackedEntities.find((e) => e.tracked.entityType === type)!;
const page = entity('page');
const attachment = entity('attachment');

describe('inverseOfTransaction', () => {
  it('soft-deletes what a create made and restores what a delete removed', () => {
    expect(
      inverseOfTransaction(page, 'tx-1', { action: 'create', entityId: 'p1', changedKeys: ['id', 'title'] }),
    ).toEqual({ undoes: 'tx-1', entityId: 'p1', action: 'delete', fields: {}, deletedAt: 'set' });
    expect(
      inverseOfTransaction(page, 'tx-2', {
        action: 'delete',
        entityId: 'p1',
        changedKeys: ['deleted_at'],
        previousValues: { deleted_at: null },
      }),
    ).toEqual({ undoes: 'tx-2', entityId: 'p1', action: 'update', fields: {}, deletedAt: 'clear' });
  });

  it('sets back exactly the entity fields an update changed, by property, with their previous values', () => {
    const inverse = inverseOfTransaction(attachment, 'tx-3', {
      action: 'update',
      entityId: 'a1',
      changedKeys: ['filename', 'content_type', 'page_id'],
      previousValues: { filename: 'plan.pdf', content_type: 'application/pdf', page_id: null },
    });
    expect(inverse).toEqual({
      undoes: 'tx-3',
      entityId: 'a1',
      action: 'update',
      fields: { filename: 'plan.pdf', contentType: 'application/pdf', pageId: null },
      deletedAt: 'keep',
    });
  });

  it('ignores changed columns that are not fields of the entity', () => {
    const inverse = inverseOfTransaction(page, 'tx-4', {
      action: 'update',
      entityId: 'p1',
      changedKeys: ['title', 'organization_id'],
      previousValues: { title: 'Plan', organization_id: 'o-other' },
    });
    expect(inverse.fields).toEqual({ title: 'Plan' });
  });

  it('deletes again what an update restored, setting back the rest of its keys', () => {
    const inverse = inverseOfTransaction(page, 'tx-5', {
      action: 'update',
      entityId: 'p1',
      changedKeys: ['deleted_at', 'title'],
      previousValues: { deleted_at: '2026-01-02 03:04:05+00', title: 'Old' },
    });
    expect(inverse).toMatchObject({ action: 'delete', deletedAt: 'set', fields: { title: 'Old' } });
  });

  it('undoes an update that changed nothing with a write that changes nothing', () => {
    expect(
      inverseOfTransaction(page, 'tx-6', { action: 'update', entityId: 'p1', changedKeys: [] }),
    ).toMatchObject({ action: 'update', fields: {}, deletedAt: 'keep' });
  });

  it('refuses an update whose previous values were not kept with 409 PREVIOUS_VALUES_NOT_KEPT', () => {
    for (const previousValues of [undefined, { content: 'only another key' }]) {
      let error: AppError | undefined;
      try {
        inverseOfTransaction(page, 'tx-7', {
          action: 'update',
          entityId: 'p1',
          changedKeys: ['title'],
          previousValues,
        });
      } catch (err) {
        error = err as AppError;
      }
      expect(error).toMatchObject({
        status: 409,
        code: 'PREVIOUS_VALUES_NOT_KEPT',
        extra: { missingKeys: ['title'] },
      });
    }
  });
});

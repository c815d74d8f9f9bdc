/**
 * What an undo meant to write, as a pure function of the undone transaction's activity. The
 * server computes the real inverse; the client needs it only when the undo met a conflict, to
 * show the person's version and to re-send it as an ordinary write (`keepMine`).
 *
 *   undone (activity)                      intended write      keep mine
 *   create                               → delete            → DELETE against their version
 *   update of keys K                     → K back             → PATCH K against their version
 *   update that restored (deleted_at ∈ K) → delete            → DELETE against their version
 *   delete                               → restore           → none: the row is live again or
 *                                                              deleted by a newer change
 */
import type { Activity } from '../../api.gen/types.gen.ts';
import { entityFromShapeRow } from './live-streams.ts';
import type { UndoInverse } from './types.ts';

/** Columns every tracked row has: written by the server, never by the person. */
const SERVER_WRITTEN_COLUMNS = new Set([
  'id',
  'organization_id',
  'created_at',
  'created_by',
  'modified_at',
  'modified_by',
  'deleted_at',
  'transactions',
  'last_client_id',
]);

/** The columns an activity changed that a person edits (title, content, …), in its order. */
export function personChangedKeys(activity: Pick<Activity, 'changedKeys'>): string[] {
  return activity.changedKeys.filter((column) => !SERVER_WRITTEN_COLUMNS.has(column));
}

export function inverseOfActivity(activity: Activity): UndoInverse | null {
  if (activity.action === 'create') return { action: 'delete' };
  if (activity.action === 'delete') return { action: 'restore' };
  if (activity.action !== 'update') return null;
  if (activity.changedKeys.includes('deleted_at')) return { action: 'delete' };
  const previous = activity.previousValues;
  if (!previous) return null;
  const changed = new Set(personChangedKeys(activity));
  const kept = Object.entries(previous).filter(([column]) => changed.has(column));
  return { action: 'update', values: entityFromShapeRow(Object.fromEntries(kept)) };
}

/** The person's version of an undo in conflict: its intended write over the server's row. */
export function intendedVersion(
  inverse: UndoInverse | null | undefined,
  theirs: Record<string, unknown> | null,
): Record<string, unknown> | null {
  if (inverse?.action === 'delete') return null;
  if (inverse?.action === 'update') return { ...(theirs ?? {}), ...inverse.values };
  return theirs;
}

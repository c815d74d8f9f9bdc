/**
 * What the library needs to know about one tracked entity. Pages and attachments are two calls
 * of `defineEntity`; the outbox, drainer, overlay and shape stream are the same for every entity.
 */
import type { TrackedEntity } from './types.ts';

export interface EntityDefinition<
  T extends TrackedEntity = TrackedEntity,
  Create extends object = object,
  Update extends object = object,
> {
  /** Entity type as the API names it in activities and counts (`page`). */
  name: string;
  /** Path segment of its REST routes and shape stream (`pages`). */
  path: string;
  /** Type-only fields: never read at run time. */
  readonly _types?: { entity: T; create: Create; update: Update };
}

export function defineEntity<
  T extends TrackedEntity,
  Create extends object,
  Update extends object,
>(definition: { name: string; path: string }): EntityDefinition<T, Create, Update> {
  return { name: definition.name, path: definition.path };
}

/** The entity's version as the optimistic lock compares it: `transactions.update ?? transactions.insert`. */
export function versionOf(row: Pick<TrackedEntity, 'transactions'>): string | null {
  return row.transactions.update ?? row.transactions.insert;
}

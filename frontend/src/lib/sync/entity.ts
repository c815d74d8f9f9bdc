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
export function versionOf(row: { transactions?: unknown }): string | null {
  const transactions = row.transactions;
  if (typeof transactions !== 'object' || transactions === null) return null;
  if ('update' in transactions && typeof transactions.update === 'string') return transactions.update;
  if ('insert' in transactions && typeof transactions.insert === 'string') return transactions.insert;
  return null;
}

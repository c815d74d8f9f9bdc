/**
 * The sync library's public API. Everything but `react.ts` (the hooks) and `entities.ts` (the
 * product's entities, built with the hooks' factory) is free of React. See README.md here.
 */
export { type ApiClient, createApiClient } from './api-client.ts';
export { attachments, pages } from './entities.ts';
export { defineEntity, type EntityDefinition, versionOf } from './entity.ts';
export {
  browserEnvironment,
  type ChannelLike,
  type LockManagerLike,
  type SyncEnvironment,
} from './environment.ts';
export { deleteLocalData, deviceClientId } from './outbox.ts';
export {
  createSyncedEntity,
  SyncProvider,
  useActivities,
  useConflicts,
  useCounts,
  useFailedWrites,
  useOnline,
  useOutbox,
  useQueuedCount,
  useSyncClient,
  useSyncSelector,
  useSyncSnapshot,
  useTransactionActions,
  useTransactionStatus,
} from './react.ts';
export { createSyncClient } from './sync-client.ts';
export type { SyncClient, SyncClientOptions, WriteOptions } from './sync-client-types.ts';
export { createClientId, createEntityId, createTabId, createTransactionId } from './transaction-id.ts';
export type {
  Activity,
  Conflict,
  FailedWrite,
  MutationAction,
  OutboxEntry,
  SyncError,
  SyncedItem,
  SyncSnapshot,
  TrackedEntity,
  TransactionStatus,
} from './types.ts';
export { personChangedKeys } from './undo-inverse.ts';

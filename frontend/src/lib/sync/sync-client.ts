import type { SyncClient, SyncClientOptions } from './sync-client-types.ts';

export function createSyncClient(_options: SyncClientOptions): SyncClient {
  throw new Error('createSyncClient: not implemented yet');
}

/**
 * The thin React layer: a provider for one SyncClient and hooks over its observable state.
 * Everything else (outbox, drainer, overlay, streams) is React-free.
 */
import { useMutation, useQuery } from '@tanstack/react-query';
import { createContext, createElement, type ReactNode, useContext, useSyncExternalStore } from 'react';
import { defineEntity, type EntityDefinition } from './entity.ts';
import type { SyncClient } from './sync-client-types.ts';
import type { OutboxEntry, SyncedItem, SyncSnapshot, TrackedEntity, TransactionStatus } from './types.ts';

const SyncContext = createContext<SyncClient | null>(null);

export function SyncProvider(props: { client: SyncClient; children?: ReactNode }) {
  return createElement(SyncContext.Provider, { value: props.client }, props.children);
}

export function useSyncClient(): SyncClient {
  const client = useContext(SyncContext);
  if (!client) throw new Error('useSyncClient: no <SyncProvider client={...}> above this component');
  return client;
}

export function useSyncSnapshot(): SyncSnapshot {
  const client = useSyncClient();
  return useSyncExternalStore(client.subscribe, client.getSnapshot, client.getSnapshot);
}

/**
 * One part of the snapshot: the component redraws only when that part changes, not on every
 * change of the outbox (during a replay the snapshot changes every 16 ms, and a feed of 100
 * activities redrawn each time took the page's main thread from the drainer).
 */
export function useSyncSelector<T>(select: (snapshot: SyncSnapshot) => T): T {
  const client = useSyncClient();
  const selected = () => select(client.getSnapshot());
  return useSyncExternalStore(client.subscribe, selected, selected);
}

/** Every transaction of the organization still in the outbox, oldest first (the debug view). */
export const useOutbox = (): readonly OutboxEntry[] => useSyncSelector((snapshot) => snapshot.outbox);
/** Transactions queued and not yet acknowledged: the offline banner's count. */
export const useQueuedCount = (): number => useSyncSelector((snapshot) => snapshot.queued);
export const useOnline = (): boolean => useSyncSelector((snapshot) => snapshot.online);
export const useConflicts = () => useSyncSelector((snapshot) => snapshot.conflicts);
export const useFailedWrites = () => useSyncSelector((snapshot) => snapshot.failed);
export const useActivities = () => useSyncSelector((snapshot) => snapshot.activities);
export const useCounts = () => useSyncSelector((snapshot) => snapshot.counts);

export function useTransactionStatus(txId: string | null | undefined): TransactionStatus | undefined {
  return useSyncSelector((snapshot) =>
    txId ? snapshot.outbox.find((entry) => entry.txId === txId)?.status : undefined,
  );
}

/** `keepMine`, `takeTheirs`, `dismiss` and `undo`, bound to the current client. */
export function useTransactionActions() {
  const client = useSyncClient();
  return {
    keepMine: (txId: string) => client.keepMine(txId),
    takeTheirs: (txId: string) => client.takeTheirs(txId),
    dismiss: (txId: string) => client.dismiss(txId),
    undo: (txId: string) => client.undo(txId),
  };
}

/**
 * One call per entity: its definition, query options and hooks. Mutations resolve as soon as
 * the change is in the outbox (they work offline); the item's `status` tells the rest.
 */
export function createSyncedEntity<
  T extends TrackedEntity,
  Create extends object,
  Update extends object,
>(options: { name: string; path: string }) {
  const definition: EntityDefinition<T, Create, Update> = defineEntity<T, Create, Update>(options);
  const useItems = (): SyncedItem<T>[] => {
    const client = useSyncClient();
    return useQuery(client.queryOptions(definition)).data ?? [];
  };
  return {
    definition,
    queryOptions: (client: SyncClient) => client.queryOptions(definition),
    useItems,
    useItem: (id: string | null | undefined): SyncedItem<T> | undefined => {
      const items = useItems();
      return id ? items.find((item) => item.id === id) : undefined;
    },
    useCreate: () => {
      const client = useSyncClient();
      return useMutation({
        networkMode: 'always',
        mutationFn: (values: Create & { id?: string }) => client.create(definition, values),
      });
    },
    useUpdate: () => {
      const client = useSyncClient();
      return useMutation({
        networkMode: 'always',
        mutationFn: ({
          id,
          patch,
          expectedVersion,
        }: {
          id: string;
          patch: Update;
          expectedVersion?: string | null;
        }) => client.update(definition, id, patch, expectedVersion === undefined ? {} : { expectedVersion }),
      });
    },
    useDelete: () => {
      const client = useSyncClient();
      return useMutation({
        networkMode: 'always',
        mutationFn: (id: string) => client.remove(definition, id),
      });
    },
    useTransactionStatus,
  };
}

/**
 * The real stack (embedded PostgreSQL, API over HTTP, CDC worker) and sync clients on
 * fake-indexeddb "devices". Network faults are injected in `fetch`, the one thing between the
 * library and the server; nothing of our own code is replaced.
 */
import { startTestStack, type TestStack } from '@sync/backend/testing/api';
import { QueryClient } from '@tanstack/query-core';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterAll, beforeAll } from 'vitest';
import type { Attachment, Page } from '../../../src/api.gen/types.gen.ts';
import type { SyncEnvironment } from '../../../src/lib/sync/environment.ts';
import {
  createSyncClient,
  defineEntity,
  type SyncClient,
  type SyncClientOptions,
} from '../../../src/lib/sync/index.ts';

export const pageEntity = defineEntity<
  Page,
  { title: string; content?: string },
  { title?: string; content?: string }
>({
  name: 'page',
  path: 'pages',
});
export const attachmentEntity = defineEntity<
  Attachment,
  { pageId?: string; filename: string; contentType: string; size: number; url: string },
  { filename?: string; url?: string }
>({ name: 'attachment', path: 'attachments' });

export interface Member {
  token: string;
  org: { id: string; slug: string };
}

/** A device: its own IndexedDB. Several clients on one device are tabs. */
export function newDevice(): Pick<SyncEnvironment, 'indexedDB' | 'IDBKeyRange'> {
  return { indexedDB: new IDBFactory(), IDBKeyRange };
}

export interface SwitchableNetwork {
  /** While true, every request fails as a lost network does. */
  offline: boolean;
  /** Requests for which this says `before` fail unsent; `after` reach the server and lose the answer. */
  drop: ((url: string, init: RequestInit) => 'before' | 'after' | undefined) | undefined;
  /** Answers in the server's place (an endpoint this build's API does not have yet). */
  respond:
    | ((url: string, init: RequestInit, request: Request | undefined) => Response | undefined)
    | undefined;
  /** Every request's method, path and headers, in order. */
  log: { method: string; path: string; headers: Headers }[];
  /** Requests per `METHOD /path`. */
  byKind: Map<string, number>;
  requests: number;
  fetch: typeof fetch;
}

/** A fetch whose connection can be cut and whose answers can be lost or stood in for. */
export function switchableNetwork(): SwitchableNetwork {
  const network: SwitchableNetwork = {
    offline: false,
    drop: undefined,
    respond: undefined,
    log: [],
    byKind: new Map(),
    requests: 0,
    fetch: async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const request = input instanceof Request ? input : undefined;
      const method = init?.method ?? request?.method ?? 'GET';
      if (network.offline) throw new TypeError('fetch failed (offline)');
      network.requests++;
      const path = new URL(url).pathname;
      network.log.push({ method, path, headers: new Headers(request?.headers ?? init?.headers) });
      network.byKind.set(`${method} ${path}`, (network.byKind.get(`${method} ${path}`) ?? 0) + 1);
      const standIn = network.respond?.(url, { ...init, method }, request);
      if (standIn) return standIn;
      const fault = network.drop?.(url, { ...init, method });
      if (fault === 'before') throw new TypeError('fetch failed (dropped)');
      const response = await fetch(input, init);
      if (fault === 'after') {
        await response.arrayBuffer();
        throw new TypeError('fetch failed (response lost)');
      }
      return response;
    },
  };
  return network;
}

export function openClient(
  stack: TestStack,
  member: Member,
  options: {
    device: Pick<SyncEnvironment, 'indexedDB' | 'IDBKeyRange'>;
    environment?: Partial<SyncEnvironment>;
  } & Partial<SyncClientOptions>,
): SyncClient {
  const { device, environment, ...rest } = options;
  return createSyncClient({
    baseUrl: stack.api.url,
    organization: member.org.slug,
    token: member.token,
    queryClient: new QueryClient(),
    entities: [pageEntity, attachmentEntity],
    ...rest,
    environment: {
      locks: undefined,
      onWake: () => () => {},
      onConnectivity: () => () => {},
      isOnline: () => true,
      ...device,
      ...environment,
    },
  });
}

export { startTestStack, type TestStack };

/** Polls `check` until it returns true (a condition on real state, never a fixed sleep). */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what = 'condition',
  describe: () => unknown = () => '',
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what} not reached in ${timeoutMs} ms ${JSON.stringify(describe())}`);
}

/** How many outbox entries are in each status, for failure messages. */
export const statusCounts = (sync: SyncClient) =>
  sync.getSnapshot().outbox.reduce<Record<string, number>>((counts, entry) => {
    counts[entry.status] = (counts[entry.status] ?? 0) + 1;
    return counts;
  }, {});

/** Waits until every outbox entry of `sync` is confirmed; a timeout names the others. */
export function untilAllConfirmed(sync: SyncClient, timeoutMs = 30_000, what = 'all confirmed') {
  return until(
    () => sync.getSnapshot().outbox.every((entry) => entry.status === 'confirmed'),
    timeoutMs,
    what,
    () => [statusCounts(sync), sync.getSnapshot().outbox.find((entry) => entry.status !== 'confirmed')],
  );
}

/** A test file's stack (API, CDC worker, PostgreSQL) and member, started before its tests. */
export interface SharedStack {
  readonly stack: TestStack;
  readonly member: Member;
  /** A client of the shared member (or `who` on `on`), closed after the file's tests. */
  client(options?: Parameters<typeof openClient>[2], on?: TestStack, who?: Member): SyncClient;
}

/** Starts one stack with the CDC worker and one member for the calling test file. */
export function startSharedStack(): SharedStack {
  let stack: TestStack | undefined;
  let member: Member | undefined;
  const open: SyncClient[] = [];
  beforeAll(async () => {
    stack = await startTestStack({ cdc: true });
    member = await stack.client.newMember();
  });
  afterAll(async () => {
    for (const sync of open) await sync.close();
    await stack?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the shared stack starts in beforeAll');
    return value;
  };
  return {
    get stack() {
      return started(stack);
    },
    get member() {
      return started(member);
    },
    client(options = { device: newDevice() }, on = started(stack), who = started(member)) {
      const sync = openClient(on, who, options);
      open.push(sync);
      return sync;
    },
  };
}

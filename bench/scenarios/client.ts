/**
 * Scenario `client`: the sync library (frontend/src/lib/sync) in this process, on
 * fake-indexeddb, against the API and CDC worker in their own processes.
 *   1. write → `confirmed` (from `create()` to the shape stream confirming it), at 50 writes/s,
 *      beside the bare HTTP round trip of the same create at the same rate;
 *   2. replay of 500 mutations queued offline, until all are confirmed, beside the same 500
 *      requests sent bare one after another;
 *   3. the library's bundle, minified + gzip, without React and the SDK.
 */
import 'fake-indexeddb/auto';
import { gzipSync } from 'node:zlib';
import { QueryClient } from '@tanstack/query-core';
import { build } from 'esbuild';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { ApiClient, type Member } from '../../backend/src/api-client.ts';
import { createSyncClient, defineEntity, type SyncClient } from '../../frontend/src/lib/sync/index.ts';
import { printTable } from '../support/load.ts';
import { startBenchStack } from '../support/stack.ts';

const RATE = 50;
const SECONDS = Number(process.env.BENCH_CLIENT_SECONDS ?? 10);
const page = defineEntity<
  {
    id: string;
    title: string;
    transactions: { insert: string | null; update: string | null; delete: string | null };
  },
  { title: string },
  { title?: string; content?: string }
>({ name: 'page', path: 'pages' });

const percentile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const ms = (value: number) => value.toFixed(1);

function openClient(apiUrl: string, member: Member, fetchImpl: typeof fetch = fetch): SyncClient {
  return createSyncClient({
    baseUrl: apiUrl,
    organization: member.org.slug,
    token: member.token,
    queryClient: new QueryClient(),
    entities: [page],
    environment: {
      indexedDB: new IDBFactory(),
      IDBKeyRange,
      locks: undefined,
      fetch: fetchImpl,
      isOnline: () => true,
      onWake: () => () => {},
      onConnectivity: () => () => {},
    },
  });
}

/** Runs `write` RATE times a second for SECONDS; returns each write's latency in ms. */
async function atRate(write: () => Promise<number>): Promise<number[]> {
  const latencies: Promise<number>[] = [];
  const started = performance.now();
  for (let i = 0; i < RATE * SECONDS; i++) {
    const due = started + (i * 1000) / RATE;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    latencies.push(write());
  }
  return (await Promise.all(latencies)).sort((a, b) => a - b);
}

async function writeToConfirmed(apiUrl: string, client: ApiClient) {
  const member = await client.newMember();
  const headers = { authorization: `Bearer ${member.token}`, 'content-type': 'application/json' };
  const bare = await atRate(async () => {
    const started = performance.now();
    const res = await fetch(`${apiUrl}/api/organizations/${member.org.slug}/pages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ title: 'bare' }),
    });
    await res.arrayBuffer();
    return performance.now() - started;
  });
  const sync = openClient(apiUrl, member);
  await sync.ready;
  try {
    const confirmed = await atRate(async () => {
      const started = performance.now();
      const { txId } = await sync.create(page, { title: 'synced' });
      await sync.waitFor(txId, ['confirmed'], 60_000);
      return performance.now() - started;
    });
    return { bare, confirmed };
  } finally {
    await sync.close();
  }
}

async function replay(apiUrl: string, client: ApiClient) {
  // bare: 100 creates, 350 updates, 50 deletes, one after another
  const bareMember = await client.newMember();
  const headers = { authorization: `Bearer ${bareMember.token}`, 'content-type': 'application/json' };
  const pages = `${apiUrl}/api/organizations/${bareMember.org.slug}/pages`;
  const bareStarted = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const res = await fetch(pages, { method: 'POST', headers, body: JSON.stringify({ title: `p${i}` }) });
    ids.push(((await res.json()) as { id: string }).id);
  }
  for (let i = 0; i < 350; i++) {
    const body = JSON.stringify({ title: `u${i}` });
    await (await fetch(`${pages}/${ids[i % 100]}`, { method: 'PATCH', headers, body })).arrayBuffer();
  }
  for (let i = 50; i < 100; i++)
    await (await fetch(`${pages}/${ids[i]}`, { method: 'DELETE', headers })).arrayBuffer();
  const bareSeconds = (performance.now() - bareStarted) / 1000;

  // the library: the same mutations queued offline, then the connection returns
  const member = await client.newMember();
  let offline = true;
  const network: typeof fetch = (input, init) =>
    offline ? Promise.reject(new TypeError('offline')) : fetch(input, init);
  const sync = openClient(apiUrl, member, network);
  try {
    const local: string[] = [];
    for (let i = 0; i < 100; i++) local.push((await sync.create(page, { title: `p${i}` })).id);
    for (let i = 0; i < 350; i++) await sync.update(page, local[i % 100] as string, { title: `u${i}` });
    for (let i = 50; i < 100; i++) await sync.remove(page, local[i] as string);
    const started = performance.now();
    offline = false;
    sync.drain();
    let sentAt = 0;
    while (!sync.getSnapshot().outbox.every((entry) => entry.status === 'confirmed')) {
      if (!sentAt && sync.getSnapshot().queued === 0) sentAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const confirmed = (performance.now() - started) / 1000;
    return { bareSeconds, sent: ((sentAt || performance.now()) - started) / 1000, confirmed };
  } finally {
    await sync.close();
  }
}

async function bundleSizes() {
  const bundle = async (external: string[]) => {
    const result = await build({
      // the generated SDK stays out, as React does: the app pays for it either way
      plugins: [
        {
          name: 'sdk-external',
          setup(context) {
            context.onResolve({ filter: /api\.gen\// }, (args) => ({ path: args.path, external: true }));
          },
        },
      ],
      entryPoints: [new URL('../../frontend/src/lib/sync/index.ts', import.meta.url).pathname],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      external,
      logLevel: 'silent',
    });
    const code = result.outputFiles[0]?.contents ?? new Uint8Array();
    return { minified: code.byteLength, gzip: gzipSync(code).byteLength };
  };
  const withoutReactAndSdk = await bundle(['react', 'react/*', '@tanstack/react-query']);
  const ownCodeOnly = await bundle([
    'react',
    'react/*',
    '@tanstack/*',
    'dexie',
    'nanoid',
    '@electric-sql/client',
  ]);
  return { withoutReactAndSdk, ownCodeOnly };
}

export async function run(): Promise<void> {
  // the bundle first: it needs no stack
  const sizes = await bundleSizes();
  printTable([
    {
      bundle: 'lib/sync with dexie, query-core, Electric client, nanoid (no React, no SDK)',
      'minified KiB': (sizes.withoutReactAndSdk.minified / 1024).toFixed(1),
      'gzip KiB': (sizes.withoutReactAndSdk.gzip / 1024).toFixed(1),
    },
    {
      bundle: 'lib/sync own code only',
      'minified KiB': (sizes.ownCodeOnly.minified / 1024).toFixed(1),
      'gzip KiB': (sizes.ownCodeOnly.gzip / 1024).toFixed(1),
    },
  ]);
  console.log('');
  const stack = await startBenchStack({ cdc: true });
  const client = new ApiClient(stack.apiUrl);
  try {
    const deadline = Date.now() + 30_000;
    while ((await client.request('GET', '/api/health')).body?.cdc?.status !== 'streaming') {
      if (Date.now() > deadline) throw new Error('the CDC worker did not start streaming within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { bare, confirmed } = await writeToConfirmed(stack.apiUrl, client);
    printTable([
      {
        figure: `bare POST round trip, ${RATE}/s (baseline)`,
        'p50 ms': ms(percentile(bare, 0.5)),
        'p99 ms': ms(percentile(bare, 0.99)),
      },
      {
        figure: `create() → confirmed, ${RATE}/s`,
        'p50 ms': ms(percentile(confirmed, 0.5)),
        'p99 ms': ms(percentile(confirmed, 0.99)),
      },
    ]);
    const replayed = await replay(stack.apiUrl, client);
    console.log('');
    printTable([
      {
        figure: '500 bare requests, one after another (baseline)',
        seconds: replayed.bareSeconds.toFixed(2),
        ratio: '',
      },
      {
        figure: 'replay of 500 queued: all sent',
        seconds: replayed.sent.toFixed(2),
        ratio: `${(replayed.sent / replayed.bareSeconds).toFixed(2)}x`,
      },
      {
        figure: 'replay of 500 queued: all confirmed',
        seconds: replayed.confirmed.toFixed(2),
        ratio: `${(replayed.confirmed / replayed.bareSeconds).toFixed(2)}x`,
      },
    ]);
  } finally {
    await stack.stop();
  }
}

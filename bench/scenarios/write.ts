/**
 * Scenario `write`: tracked creates, tracked updates (with X-Expected-Transaction-Id) and
 * idempotent replays at concurrency 32, each beside a plain untracked insert/update of the same
 * table served by the same API process in the same run.
 */
import { ApiClient } from '../../backend/src/api-client.ts';
import { type LoadResult, printTable, loadRow as row, runLoad } from '../support/load.ts';
import { startBenchStack } from '../support/stack.ts';

const CONCURRENCY = 32;
const REQUESTS = Number(process.env.BENCH_WRITE_REQUESTS ?? 6000);

export async function run(): Promise<void> {
  const stack = await startBenchStack();
  try {
    const member = await new ApiClient(stack.apiUrl).newMember();
    const auth = { authorization: `Bearer ${member.token}` };
    const tracked = `/api/organizations/${member.org.id}/pages`;
    const plain = `/api/bench/organizations/${member.org.id}/plain-pages`;
    const load = (
      next: Parameters<typeof runLoad>[0]['next'],
      onResponse?: Parameters<typeof runLoad>[0]['onResponse'],
    ) => runLoad({ baseUrl: stack.apiUrl, concurrency: CONCURRENCY, requests: REQUESTS, next, onResponse });

    // warm up both paths (JIT, connection pools, PostgreSQL caches)
    await load((w, i) => ({ method: 'POST', path: plain, headers: auth, body: { title: `warm ${w}-${i}` } }));
    await load((w, i) => ({
      method: 'POST',
      path: tracked,
      headers: { ...auth, 'x-transaction-id': `warm-${w}-${i}-${Date.now()}` },
      body: { title: 'warm' },
    }));

    const createdIds: string[][] = Array.from({ length: CONCURRENCY }, () => []);
    const versions: Map<string, string>[] = Array.from({ length: CONCURRENCY }, () => new Map());
    const createTx = (w: number, i: number) => `create-${w}-${i}-bench0001`;

    const plainInsert = await load((w, i) => ({
      method: 'POST',
      path: plain,
      headers: auth,
      body: { title: `plain ${w}-${i}` },
    }));
    const trackedCreate = await load(
      (w, i) => ({
        method: 'POST',
        path: tracked,
        headers: { ...auth, 'x-transaction-id': createTx(w, i), 'x-client-id': `bench_client_${w}` },
        body: { title: `tracked ${w}-${i}` },
      }),
      (w, status, body) => {
        if (status === 201) {
          createdIds[w]!.push(body.id);
          versions[w]!.set(body.id, body.transactions.insert);
        }
      },
    );
    const replays = await load((w, i) => ({
      method: 'POST',
      path: tracked,
      headers: { ...auth, 'x-transaction-id': createTx(w, i), 'x-client-id': `bench_client_${w}` },
      body: { title: `tracked ${w}-${i}` },
    }));
    const idAt = (w: number, i: number) => createdIds[w]![i % createdIds[w]!.length]!;
    const plainUpdate = await load((w, i) => ({
      method: 'PATCH',
      path: `${plain}/${idAt(w, i)}`,
      headers: auth,
      body: { title: `plain update ${i}` },
    }));
    const trackedUpdate = await load(
      (w, i) => {
        const id = idAt(w, i);
        return {
          method: 'PATCH',
          path: `${tracked}/${id}`,
          headers: {
            ...auth,
            'x-transaction-id': `update-${w}-${i}-bench0001`,
            'x-expected-transaction-id': versions[w]!.get(id)!,
          },
          body: { title: `tracked update ${i}` },
        };
      },
      (w, status, body) => {
        if (status === 200) versions[w]!.set(body.id, body.transactions.update);
      },
    );

    console.log(`concurrency ${CONCURRENCY}, ${REQUESTS} requests each, durable PostgreSQL (fsync on)`);
    printTable([
      row('plain insert', plainInsert),
      row('tracked create', trackedCreate, plainInsert),
      row('idempotent replay', replays, plainInsert),
      row('plain update', plainUpdate),
      row('tracked update (expected version)', trackedUpdate, plainUpdate),
    ]);
  } finally {
    await stack.stop();
  }
}

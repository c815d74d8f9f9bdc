/**
 * Scenario `write`: tracked creates, tracked updates (with X-Expected-Transaction-Id) and
 * idempotent replays at concurrency 32, each beside a plain untracked insert/update of the same
 * table served by the same API process in the same run. Beside each, the API process's CPU time
 * per request (from /proc), which a shared machine's load moves far less than throughput.
 */
import { ApiClient } from '../../backend/src/api-client.ts';
import { type LoadResult, printTable, loadRow as row, runLoad } from '../support/load.ts';
import { startBenchStack } from '../support/stack.ts';

const CONCURRENCY = 32;

interface MeasuredLoad extends LoadResult {
  /** CPU time of the API process per request, in µs. */
  apiCpuUs: number;
}
const REQUESTS = Number(process.env.BENCH_WRITE_REQUESTS ?? 6000);

export async function run(): Promise<void> {
  const stack = await startBenchStack();
  try {
    const member = await new ApiClient(stack.apiUrl).newMember();
    const auth = { authorization: `Bearer ${member.token}` };
    const tracked = `/api/organizations/${member.org.id}/pages`;
    const plain = `/api/bench/organizations/${member.org.id}/plain-pages`;
    // each run with the API process's CPU time per request, which moves far less with the
    // machine's load than throughput does
    const load = async (
      next: Parameters<typeof runLoad>[0]['next'],
      onResponse?: Parameters<typeof runLoad>[0]['onResponse'],
    ): Promise<MeasuredLoad> => {
      const cpuBefore = stack.apiCpuMs();
      const result = await runLoad({
        baseUrl: stack.apiUrl,
        concurrency: CONCURRENCY,
        requests: REQUESTS,
        next,
        onResponse,
      });
      return { ...result, apiCpuUs: ((stack.apiCpuMs() - cpuBefore) * 1000) / result.requests };
    };
    const measuredRow = (name: string, r: MeasuredLoad, baseline?: MeasuredLoad) => ({
      ...row(name, r, baseline),
      'API CPU µs/req': baseline
        ? `${r.apiCpuUs.toFixed(0)} (${(r.apiCpuUs / baseline.apiCpuUs).toFixed(2)}x)`
        : r.apiCpuUs.toFixed(0),
    });

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
      measuredRow('plain insert', plainInsert),
      measuredRow('tracked create', trackedCreate, plainInsert),
      measuredRow('idempotent replay', replays, plainInsert),
      measuredRow('plain update', plainUpdate),
      measuredRow('tracked update (expected version)', trackedUpdate, plainUpdate),
    ]);
  } finally {
    await stack.stop();
  }
}

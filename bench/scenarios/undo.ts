/**
 * Scenario `undo`: undoing recorded updates at concurrency 32 (each undo on its own page, so no
 * lock conflicts), beside the baseline of the tracked updates it undoes, measured in the same run
 * against the same API, database and CDC worker. An undo is a tracked write plus the lookup of
 * the undone transaction's activity.
 */
import postgres from 'postgres';
import { ApiClient } from '../../backend/src/api-client.ts';
import { printTable, loadRow as row, runLoad } from '../support/load.ts';
import { startBenchStack } from '../support/stack.ts';

const CONCURRENCY = 32;
const REQUESTS = Number(process.env.BENCH_UNDO_REQUESTS ?? 4000);

export async function run(): Promise<void> {
  const stack = await startBenchStack({ cdc: true });
  const sql = postgres(stack.cluster.url, { onnotice: () => {}, max: 1 });
  try {
    const member = await new ApiClient(stack.apiUrl).newMember();
    const auth = { authorization: `Bearer ${member.token}` };
    const pages = `/api/organizations/${member.org.id}/pages`;
    const transactions = `/api/organizations/${member.org.id}/transactions`;
    const load = (
      next: Parameters<typeof runLoad>[0]['next'],
      onResponse?: Parameters<typeof runLoad>[0]['onResponse'],
    ) => runLoad({ baseUrl: stack.apiUrl, concurrency: CONCURRENCY, requests: REQUESTS, next, onResponse });

    const ids: string[][] = Array.from({ length: CONCURRENCY }, () => []);
    const versions = new Map<string, string>();
    await load(
      (w, i) => ({
        method: 'POST',
        path: pages,
        headers: { ...auth, 'x-transaction-id': `create-${w}-${i}-bench0001` },
        body: { title: `page ${w}-${i}`, content: 'x'.repeat(200) },
      }),
      (w, status, body) => {
        if (status !== 201) return;
        ids[w]!.push(body.id);
        versions.set(body.id, body.transactions.insert);
      },
    );
    const renameTx = (w: number, i: number) => `rename-${w}-${i}-bench0001`;
    const updates = await load((w, i) => {
      const id = ids[w]![i]!;
      return {
        method: 'PATCH',
        path: `${pages}/${id}`,
        headers: {
          ...auth,
          'x-transaction-id': renameTx(w, i),
          'x-expected-transaction-id': versions.get(id)!,
        },
        body: { title: `renamed ${w}-${i}` },
      };
    });
    await waitForActivities(sql, 'rename-%', updates.requests);

    const undoTx = (w: number, i: number) => `undo-${w}-${i}-bench0001`;
    const undoRequest = (w: number, i: number) => ({
      method: 'POST' as const,
      path: `${transactions}/${renameTx(w, i)}/undo`,
      headers: { ...auth, 'x-transaction-id': undoTx(w, i) },
    });
    const undos = await load(undoRequest);
    const replays = await load(undoRequest);

    console.log(`concurrency ${CONCURRENCY}, ${REQUESTS} requests each, CDC worker running, fsync on`);
    printTable([
      row('tracked update (expected version)', updates),
      row('undo of a recorded update', undos, updates),
      row('replayed undo (idempotent hit)', replays, updates),
    ]);
  } finally {
    await sql.end();
    await stack.stop();
  }
}

/** The undo reads the activity log: start only once the worker has recorded every update. */
async function waitForActivities(sql: postgres.Sql, pattern: string, expected: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const [row] = await sql<{ count: number }[]>`
      select count(*)::int as count from activities where transaction_id like ${pattern}`;
    if ((row?.count ?? 0) >= expected) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the CDC worker did not record ${expected} activities in time`);
}

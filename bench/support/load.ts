/** A closed-loop load generator: `concurrency` workers each send one request after another. */
import { Pool } from 'undici';

export interface LoadResult {
  requests: number;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
  statuses: Record<number, number>;
}

export interface Request {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export async function runLoad(options: {
  baseUrl: string;
  concurrency: number;
  requests: number;
  /** The i-th request of worker w (i counts per worker). */
  next: (worker: number, i: number) => Request;
  /** Called with each parsed response body (e.g. to track the entity's version). */
  onResponse?: (worker: number, status: number, body: any) => void;
}): Promise<LoadResult> {
  const pool = new Pool(options.baseUrl, { connections: options.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  const perWorker = Math.ceil(options.requests / options.concurrency);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async (_, worker) => {
      for (let i = 0; i < perWorker; i++) {
        const request = options.next(worker, i);
        const t0 = performance.now();
        const res = await pool.request({
          method: request.method,
          path: request.path,
          headers: { 'content-type': 'application/json', ...request.headers },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
        });
        const text = await res.body.text();
        latencies.push(performance.now() - t0);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        options.onResponse?.(worker, res.statusCode, text ? JSON.parse(text) : null);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    seconds,
    throughput: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    statuses,
  };
}

/** One table row of a load run: throughput, latencies, the ratio to its baseline, statuses. */
export function loadRow(name: string, r: LoadResult, baseline?: LoadResult): Record<string, string> {
  return {
    operation: name,
    'req/s': r.throughput.toFixed(0),
    'p50 ms': r.p50.toFixed(1),
    'p99 ms': r.p99.toFixed(1),
    'vs baseline': baseline ? `${(r.throughput / baseline.throughput).toFixed(2)}x` : '(baseline)',
    statuses: Object.entries(r.statuses)
      .map(([s, n]) => `${s}:${n}`)
      .join(' '),
  };
}

export function printTable(rows: Record<string, string | number>[]): void {
  const columns = Object.keys(rows[0] ?? {});
  const width = (c: string) => Math.max(c.length, ...rows.map((r) => String(r[c]).length));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(width(columns[i]!))).join('  ');
  console.log(line(columns));
  console.log(line(columns.map((c) => '-'.repeat(width(c)))));
  for (const row of rows) console.log(line(columns.map((c) => String(row[c]))));
}

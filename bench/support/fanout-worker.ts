/**
 * A fan-out client process: opens `count` official ShapeStreams on one shape (long-poll or SSE)
 * and reports `ready` once all are live. Then, for each change the bench announces:
 *
 *   { awaitTransaction } ─► every stream's matchStream on it ─► { seenAt, answeredAt, cpuMs }
 *   { stop } ──────────────► every stream aborted, exit
 *
 * seenAt: the wall-clock time at which each stream saw the transaction; answeredAt: when the first
 * answer after the announcement reached each stream (its response's headers, as this process got
 * to them); cpuMs: the CPU this process spent until every stream had it. Several of these run
 * at once so one process's parsing does not stand in for the server, and none disconnects
 * before the bench says so: a process done early would make the API close its streams while
 * the others still wait for their answers.
 *
 * `fetchClient: 'undici'` gives each stream a fetch on undici's `request` over one kept-alive
 * pool (bench/support/lean-fetch.ts) instead of Node's global `fetch`.
 */
import { join } from 'node:path';
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { matchStream } from '@electric-sql/experimental';
import { profiledTo } from './cpu-profile.ts';
import { leanFetch } from './lean-fetch.ts';

export type FanOutFetch = 'global' | 'undici';

export interface FanOutWorkerOptions {
  url: string;
  token: string;
  count: number;
  liveSse: boolean;
  fetchClient: FanOutFetch;
}

export type FanOutMessage = { awaitTransaction: string } | { stop: true };

export interface FanOutReport {
  seenAt: (number | null)[];
  answeredAt: (number | null)[];
  cpuMs: number;
}

const { url, token, count, liveSse, fetchClient } = JSON.parse(process.argv[2]!) as FanOutWorkerOptions;
const baseFetch = fetchClient === 'undici' ? leanFetch(url) : fetch;
/** Set once a change is announced: each stream's first response headers after it. */
let armed = false;
let answeredAt: (number | null)[] = [];
// one controller per stream: a signal shared by all would make each re-armed request add its
// abort listener to a list of `count` (Node's EventTarget checks for duplicates, O(n) per add)
const controllers = Array.from({ length: count }, () => new AbortController());
const streams = controllers.map((controller, i) => {
  const timedFetch: typeof fetch = async (input, init) => {
    const res = await baseFetch(input, init);
    if (armed) answeredAt[i] ??= Date.now();
    return res;
  };
  return new ShapeStream<Row>({
    url,
    headers: { authorization: `Bearer ${token}` },
    signal: controller.signal,
    liveSse,
    fetchClient: timedFetch,
  });
});
await Promise.all(streams.map((stream) => new Shape(stream).rows));

/** `BENCH_FANOUT_PROFILE=<dir>`: a CPU profile of this process during each change, written there. */
const profileDir = process.env.BENCH_FANOUT_PROFILE;
let changes = 0;

/** Every stream's matchStream on the announced transaction, and the CPU this process spent until all had it. */
async function awaitChange(transaction: string): Promise<FanOutReport> {
  const cpu = process.cpuUsage();
  answeredAt = Array.from({ length: count }, () => null);
  armed = true;
  const seenAt = await Promise.all(
    streams.map((stream) =>
      matchStream(stream, ['insert'], (m: any) => m.value.transactions?.insert === transaction, 60_000).then(
        () => Date.now(),
        () => null, // not seen within 60 s: reported as missed, not a crash that hangs the run
      ),
    ),
  );
  const used = process.cpuUsage(cpu);
  armed = false;
  return { seenAt, answeredAt, cpuMs: (used.user + used.system) / 1000 };
}

process.on('message', async (message: FanOutMessage) => {
  if ('stop' in message) {
    for (const controller of controllers) controller.abort();
    process.exit(0);
  }
  changes++;
  const file = `fanout-${liveSse ? 'sse' : 'poll'}-${fetchClient}-${count}-${process.pid}-${changes}.cpuprofile`;
  const report = await profiledTo(profileDir && join(profileDir, file), () =>
    awaitChange(message.awaitTransaction),
  );
  process.send!(report);
});
process.send!({ ready: true });

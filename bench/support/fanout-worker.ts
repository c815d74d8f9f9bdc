/**
 * A fan-out client process: opens `count` official ShapeStreams on one shape (long-poll or SSE), reports `ready`
 * once all are live, then the wall-clock time at which each saw the awaited transaction, when
 * the first answer after the awaited write reached each stream (its response's headers, as this
 * process got to them), and the CPU this process spent from the write until every stream had it.
 * Several of these run at once so one process's parsing does not stand in for the server.
 */
import { setMaxListeners } from 'node:events';
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import { matchStream } from '@electric-sql/experimental';

const { url, token, count, liveSse } = JSON.parse(process.argv[2]!) as {
  url: string;
  token: string;
  count: number;
  liveSse: boolean;
};
const controller = new AbortController();
setMaxListeners(0, controller.signal); // one signal stops every stream of this process
/** Set once the write is about to be sent: each stream's first response headers after it. */
let armed = false;
const answeredAt: (number | null)[] = Array.from({ length: count }, () => null);
const streams = Array.from({ length: count }, (_, i) => {
  const timedFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
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
process.on('message', async (message: { awaitTransaction: string }) => {
  const cpu = process.cpuUsage();
  armed = true;
  const seenAt = await Promise.all(
    streams.map((stream) =>
      matchStream(
        stream,
        ['insert'],
        (m: any) => m.value.transactions?.insert === message.awaitTransaction,
        60_000,
      ).then(
        () => Date.now(),
        () => null, // not seen within 60 s: reported as missed, not a crash that hangs the run
      ),
    ),
  );
  const used = process.cpuUsage(cpu);
  process.send!({ seenAt, answeredAt, cpuMs: (used.user + used.system) / 1000 });
  controller.abort();
  process.exit(0);
});
process.send!({ ready: true });

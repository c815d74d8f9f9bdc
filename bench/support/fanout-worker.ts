/**
 * A fan-out client process: opens `count` official ShapeStreams on one shape (long-poll or SSE), reports `ready`
 * once all are live, then the wall-clock time at which each saw the awaited transaction.
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
const streams = Array.from(
  { length: count },
  () =>
    new ShapeStream<Row>({
      url,
      headers: { authorization: `Bearer ${token}` },
      signal: controller.signal,
      liveSse,
    }),
);
await Promise.all(streams.map((stream) => new Shape(stream).rows));
process.on('message', async (message: { awaitTransaction: string }) => {
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
  process.send!({ seenAt });
  controller.abort();
  process.exit(0);
});
process.send!({ ready: true });

/**
 * The client's floor: a shape server that costs nothing, in its own process. It answers the
 * official client's requests with responses recorded from the API (their status, headers and
 * body bytes), from memory, with no database and no encoding:
 *
 *   bench ──{ recorded }──► this process ──{ url }──► bench
 *   GET offset=-1, columns=C ─────────────► the recorded first chunk of C
 *   GET offset=O, handle=H, columns=C ────► the recorded chunk asked for with (C, H, O)
 *   GET live=true ────────────────────────► held, unanswered, until the client aborts it
 *   any other request ────────────────────► 400, counted as missed
 *   bench ──{ awaitLive }──► this process ──{ live: true }──► bench, once a live request is held
 *                                                             (since the last report)
 *   bench ──{ report }──► this process ──{ answered, held, missed, cpuMs }──► bench
 *
 * A sync against it times the client's own work on the bytes our server sends (its fetches,
 * parsing, the Shape's rows), none of the server's, and its CPU is not the bench process's.
 */
import { createServer, type ServerResponse } from 'node:http';

export interface RecordedResponse {
  /** The request's `columns` (quotes removed), `handle` (empty on offset=-1) and `offset`. */
  key: string;
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

export type FloorMessage = { recorded: RecordedResponse[] } | { awaitLive: true } | { report: true };

export interface FloorReport {
  answered: number;
  /** Live requests held until their client aborted them, since the last report. */
  held: number;
  /** Requests no recorded response answers (`METHOD url`), since the last report. */
  missed: string[];
  /** CPU this process spent since the last report. */
  cpuMs: number;
}

/** The key a request is recorded and looked up under. */
export function floorKey(params: URLSearchParams): string {
  const offset = params.get('offset') ?? '';
  const columns = (params.get('columns') ?? '').replaceAll('"', '');
  return `${columns}|${offset === '-1' ? '' : (params.get('handle') ?? '')}|${offset}`;
}

/** Headers of the connection, not of the response: Node sets its own. */
const HOP_BY_HOP = new Set(['connection', 'content-length', 'date', 'keep-alive', 'transfer-encoding']);

const recorded = new Map<string, RecordedResponse>();
let counts = { answered: 0, held: 0, missed: [] as string[] };
let cpu = process.cpuUsage();
let liveAwaited = false;

function replyLive() {
  liveAwaited = false;
  process.send!({ live: true });
}

const server = createServer((req, res) => {
  const params = new URL(req.url ?? '/', 'http://floor').searchParams;
  if (params.get('live') === 'true') {
    // answered never: the client aborts it when the bench is done with the stream
    counts.held++;
    if (liveAwaited) replyLive();
    return;
  }
  const response = recorded.get(floorKey(params));
  if (!response) {
    counts.missed.push(`${req.method} ${req.url}`);
    return sendMissed(res);
  }
  counts.answered++;
  res.writeHead(response.status, [
    ...response.headers.filter(([name]) => !HOP_BY_HOP.has(name)).flat(),
    'content-length',
    String(response.body.byteLength),
  ]);
  res.end(response.body);
});

function sendMissed(res: ServerResponse) {
  const body = JSON.stringify({
    error: 'not recorded',
    code: 'NOT_RECORDED',
    message: 'no recorded response answers this request',
  });
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(body);
}

process.on('message', (message: FloorMessage) => {
  if ('recorded' in message) {
    for (const response of message.recorded) recorded.set(response.key, response);
    server.listen(0, '127.0.0.1', () => {
      cpu = process.cpuUsage(); // the first report counts the syncs, not the recorded bytes coming in
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      process.send!({ url: `http://127.0.0.1:${port}` });
    });
    return;
  }
  if ('awaitLive' in message) {
    liveAwaited = true;
    if (counts.held > 0) replyLive();
    return;
  }
  const used = process.cpuUsage(cpu);
  const report: FloorReport = { ...counts, cpuMs: (used.user + used.system) / 1000 };
  counts = { answered: 0, held: 0, missed: [] };
  cpu = process.cpuUsage();
  process.send!(report);
});

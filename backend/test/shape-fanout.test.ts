/**
 * Answers to woken long-polls, written straight to Node's ServerResponse (core/straight-
 * response.ts): indistinguishable from the answer Hono gives the same request at once, the
 * encoded bytes shared by every request woken together, and nothing written to (or held for)
 * a client that left while it waited.
 */
import { request as httpRequest, type IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { liveQueryAfterSnapshot, orgPath, txId } from './support/contract.ts';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 5_000 } });
});
afterAll(async () => {
  await stack?.stop();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const shapeUrl = (m: Member) => `${stack.api.url}${orgPath(m)}/shapes/pages`;

interface RawAnswer {
  status: number;
  /** Header names and values as sent, in order. */
  rawHeaders: string[];
  body: Buffer;
}

/** A GET through node:http, which keeps the headers exactly as they came. */
function rawGet(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false, signal }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Headers with the values blanked that differ between any two responses: the request id, the
 * date, and the cursor (the number of the current 20 s interval, which two requests may straddle).
 */
const VARYING = new Set(['x-request-id', 'date', 'electric-cursor']);
function comparable(rawHeaders: string[]): string[] {
  return rawHeaders.map((value, i) =>
    i % 2 === 1 && VARYING.has(rawHeaders[i - 1]?.toLowerCase() ?? '') ? '' : value,
  );
}

function header(answer: RawAnswer, name: string): string | undefined {
  const i = answer.rawHeaders.findIndex((value, j) => j % 2 === 0 && value.toLowerCase() === name);
  return i < 0 ? undefined : answer.rawHeaders[i + 1];
}

const liveQueryOf = (m: Member) => liveQueryAfterSnapshot(shapeUrl(m), m.token);

function createPage(m: Member, title: string) {
  return stack.client.request('POST', `${orgPath(m)}/pages`, {
    token: m.token,
    body: { title },
    headers: { 'x-transaction-id': txId('tx-fanout') },
  });
}

/** Every `end(body)` Node is asked to do for a response to a request whose URL contains `marker`. */
function recordEnds(marker: string): unknown[] {
  const bodies: unknown[] = [];
  const end = ServerResponse.prototype.end;
  vi.spyOn(ServerResponse.prototype, 'end').mockImplementation(function (this: ServerResponse, ...args) {
    if (this.req.url?.includes(marker)) bodies.push(args[0]);
    return end.apply(this, args as Parameters<typeof end>);
  });
  return bodies;
}

/** Long-polls waiting in the API process, as `/api/metrics` counts them. */
async function openLongPolls(): Promise<number> {
  const res = await fetch(`${stack.api.url}/api/metrics`);
  const text = await res.text();
  return Number(/^stream_clients\{kind="shape-poll"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

describe('a woken long-poll answered straight to Node', () => {
  for (const origin of ['http://localhost:5173', undefined]) {
    it(`sends the same status, headers in the same order and bytes as the same request answered at once (origin ${origin ?? 'none'})`, async () => {
      const m = await stack.client.newMember();
      const url = `${shapeUrl(m)}?${await liveQueryOf(m)}`;
      const headers = { authorization: `Bearer ${m.token}`, ...(origin ? { origin } : {}) };
      const woken = rawGet(url, headers);
      await new Promise((r) => setTimeout(r, 300));
      await createPage(m, 'seen by both');
      const straight = await woken;
      // the change is logged now: the same request is answered at once, through Hono's response
      const atOnce = await rawGet(url, headers);

      expect(straight.status).toBe(200);
      expect(straight.body.toString()).toContain('seen by both');
      expect(straight.body.equals(atOnce.body)).toBe(true);
      expect(comparable(straight.rawHeaders)).toEqual(comparable(atOnce.rawHeaders));
      const cursors = [straight, atOnce].map((answer) => Number(header(answer, 'electric-cursor')));
      expect(Math.abs((cursors[1] ?? 0) - (cursors[0] ?? 0))).toBeLessThanOrEqual(1);
      const names = straight.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
      expect(names).toEqual(
        expect.arrayContaining(['x-request-id', 'cache-control', 'vary', 'electric-offset']),
      );
      expect(names.includes('access-control-allow-origin')).toBe(origin !== undefined);
    });
  }

  it('answers a woken long-poll as an ordinary response where there is no Node response (app.request)', async () => {
    const m = await stack.client.newMember();
    const query = await liveQueryOf(m);
    const path = `${orgPath(m)}/shapes/pages?${query}`;
    const headers = { authorization: `Bearer ${m.token}`, origin: 'http://localhost:5173' };
    const inProcess = stack.api.app.request(path, { headers });
    await new Promise((r) => setTimeout(r, 300));
    await createPage(m, 'without a socket');
    const woken = await inProcess;
    const overHttp = await rawGet(`${stack.api.url}${path}`, headers);
    expect(woken.status).toBe(200);
    expect(Buffer.from(await woken.arrayBuffer()).equals(overHttp.body)).toBe(true);
    expect(woken.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(woken.headers.get('cache-control')).toBe(header(overHttp, 'cache-control'));
    expect(woken.headers.get('vary')).toBe(header(overHttp, 'vary'));
  });

  it('writes the one encoded body to every request woken together', async () => {
    const m = await stack.client.newMember();
    const marker = `shared-${Math.random().toString(36).slice(2)}`;
    const url = `${shapeUrl(m)}?${await liveQueryOf(m)}&cache-buster=${marker}`;
    const ends = recordEnds(marker);
    const waiting = Array.from({ length: 5 }, () => rawGet(url, { authorization: `Bearer ${m.token}` }));
    await new Promise((r) => setTimeout(r, 300));
    await createPage(m, 'for all five');
    const answers = await Promise.all(waiting);
    for (const answer of answers) expect(answer.body.toString()).toContain('for all five');
    expect(ends).toHaveLength(5);
    expect(ends[0]).toBeInstanceOf(Buffer);
    for (const body of ends) expect(body).toBe(ends[0]);
  });

  it('gives each origin and cursor among the requests woken together its own headers, and all the same body', async () => {
    const m = await stack.client.newMember();
    const query = await liveQueryOf(m);
    const url = `${shapeUrl(m)}?${query}`;
    const authorization = `Bearer ${m.token}`;
    const sentCursor = String(Math.floor(Date.now() / 20_000));
    query.set('cursor', sentCursor);
    const waiting = [
      rawGet(url, { authorization, origin: 'http://localhost:5173' }),
      rawGet(url, { authorization }),
      rawGet(`${shapeUrl(m)}?${query}`, { authorization }),
      rawGet(url, { authorization, origin: 'http://localhost:5173' }),
    ];
    await new Promise((r) => setTimeout(r, 300));
    await createPage(m, 'for each their own');
    const [fromBrowser, plain, withCursor, fromBrowserAgain] = await Promise.all(waiting);
    if (!fromBrowser || !plain || !withCursor || !fromBrowserAgain) throw new Error('an answer is missing');
    for (const answer of [plain, withCursor, fromBrowserAgain]) {
      expect(answer.body.equals(fromBrowser.body)).toBe(true);
    }
    expect(fromBrowser.body.toString()).toContain('for each their own');
    expect(header(fromBrowser, 'access-control-allow-origin')).toBe('http://localhost:5173');
    expect(comparable(fromBrowserAgain.rawHeaders)).toEqual(comparable(fromBrowser.rawHeaders));
    expect(header(plain, 'access-control-allow-origin')).toBeUndefined();
    // a client's own cursor is never given back to it (the interval's next one instead)
    expect(header(withCursor, 'electric-cursor')).toBe(String(Number(sentCursor) + 1));
    const ids = [fromBrowser, plain, withCursor, fromBrowserAgain].map((a) => header(a, 'x-request-id'));
    expect(new Set(ids).size).toBe(4);
  });

  it('writes nothing to a client that left while it waited, and holds nothing for it', async () => {
    const m = await stack.client.newMember();
    const marker = `gone-${Math.random().toString(36).slice(2)}`;
    const query = await liveQueryOf(m);
    const ends = recordEnds(marker);
    const leaving = new AbortController();
    const gone = rawGet(
      `${shapeUrl(m)}?${query}&cache-buster=${marker}`,
      { authorization: `Bearer ${m.token}` },
      leaving.signal,
    );
    gone.catch(() => {});
    const staying = rawGet(`${shapeUrl(m)}?${query}`, { authorization: `Bearer ${m.token}` });
    await new Promise((r) => setTimeout(r, 300));
    expect(await openLongPolls()).toBe(2);
    leaving.abort();
    await expect(gone).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 100));
    await createPage(m, 'after one left');
    expect((await staying).body.toString()).toContain('after one left');
    expect(ends).toEqual([]);
    expect(await openLongPolls()).toBe(0);
  });
});

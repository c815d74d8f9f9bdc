/**
 * Proxy mode (ELECTRIC_URL): a second API on the same database forwards shape requests to an
 * upstream. No real Electric runs here, so the upstream is our own embedded shape endpoint
 * behind a small stand-in that speaks Electric's URL form (/v1/shape?table=&where=&params[1]=),
 * records what it was asked, and gzips its answers like a real deployment behind a CDN.
 */
import { createServer, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { type Row, Shape, ShapeStream } from '@electric-sql/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../src/server.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { txId } from './support/contract.ts';

let stack: TestStack;
let proxy: ApiServer;
let upstream: Server;
let alice: Member;
let mallory: Member;
const received: URLSearchParams[] = [];

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { shapeLongPollMs: 2_000 } });
  alice = await stack.client.newMember();
  mallory = await stack.client.newMember();
  const tokenOf = new Map([
    [alice.org.id, alice.token],
    [mallory.org.id, mallory.token],
  ]);
  upstream = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://upstream');
    received.push(url.searchParams);
    const organizationId = url.searchParams.get('params[1]')!;
    const forwarded = new URLSearchParams(url.searchParams);
    for (const name of ['table', 'where', 'params[1]', 'secret']) forwarded.delete(name);
    const target = `${stack.api.url}/api/organizations/${organizationId}/shapes/${url.searchParams.get('table')}?${forwarded}`;
    // a live request still open when the test stack stops ends here: answer like a dead upstream
    const aborted = new AbortController();
    res.on('close', () => aborted.abort());
    try {
      const answer = await fetch(target, {
        headers: { authorization: `Bearer ${tokenOf.get(organizationId)}` },
        signal: aborted.signal,
      });
      const body = gzipSync(Buffer.from(await answer.arrayBuffer()));
      const headers: Record<string, string> = {
        'content-encoding': 'gzip',
        'content-length': String(body.length),
      };
      answer.headers.forEach((value, name) => {
        if (name.startsWith('electric-') || name === 'content-type') headers[name] = value;
      });
      res.writeHead(answer.status, headers).end(body);
    } catch {
      if (!res.headersSent) res.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const address = upstream.address() as { port: number };
  proxy = await startApiServer({
    databaseUrl: stack.cluster.url,
    logger: pino({ level: 'silent' }),
    config: { electricUrl: `http://127.0.0.1:${address.port}/v1/shape`, electricSecret: 'electric-secret' },
  });
});
afterAll(async () => {
  await proxy?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  await stack?.stop();
});

describe('shape proxy mode', () => {
  it('forwards only protocol parameters with server-side table, where and organization', async () => {
    received.length = 0;
    const res = await fetch(
      `${proxy.url}/api/organizations/${alice.org.slug}/shapes/pages?offset=-1&log=full&table=users&where=1%3D1&params%5B1%5D=${mallory.org.id}`,
      { headers: { authorization: `Bearer ${alice.token}` } },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('electric-handle')).toBeTruthy();
    expect(Array.isArray(await res.json())).toBe(true);
    const params = received.at(-1)!;
    expect(params.get('table')).toBe('pages');
    expect(params.get('where')).toBe('organization_id = $1 AND deleted_at IS NULL');
    expect(params.get('params[1]')).toBe(alice.org.id);
    expect(params.get('columns')).toBeNull();
    expect(params.get('secret')).toBe('electric-secret');
    expect(params.get('offset')).toBe('-1');
    expect(params.get('log')).toBe('full');
  });

  it('forwards a narrowing as parsed here, and refuses a widening before anything reaches upstream', async () => {
    const url = `${proxy.url}/api/organizations/${mallory.org.slug}/shapes/pages?offset=-1`;
    const headers = { authorization: `Bearer ${mallory.token}` };
    await stack.client.request('POST', `/api/organizations/${mallory.org.slug}/pages`, {
      token: mallory.token,
      body: { title: 'narrowed' },
      headers: { 'x-transaction-id': txId('tx-proxy') },
    });
    received.length = 0;
    const narrowed = await fetch(`${url}&columns=TITLE,%22id%22,title`, { headers });
    expect(narrowed.status).toBe(200);
    expect(received.at(-1)?.get('columns')).toBe('"id","title"');
    const rows = (await narrowed.json()).filter((m: any) => m.key);
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(Object.keys(row.value)).toEqual(['id', 'title']);
    received.length = 0;
    for (const columns of ['%22id%22,%22password_hash%22', '%22title%22', '', 'id,']) {
      const res = await fetch(`${url}&columns=${columns}`, { headers });
      expect(res.status, columns).toBe(400);
      expect((await res.json()).code, columns).toBe('VALIDATION_FAILED');
    }
    expect(received).toHaveLength(0);
  });

  it('authorizes before forwarding: another organization gets 404 and nothing reaches upstream', async () => {
    received.length = 0;
    const res = await fetch(`${proxy.url}/api/organizations/${alice.org.slug}/shapes/pages?offset=-1`, {
      headers: { authorization: `Bearer ${mallory.token}` },
    });
    expect(res.status).toBe(404);
    expect(received).toHaveLength(0);
  });

  it('lets the official client sync and follow live changes through the proxy', async () => {
    const path = `/api/organizations/${alice.org.slug}/pages`;
    await stack.client.request('POST', path, {
      token: alice.token,
      body: { title: 'before' },
      headers: { 'x-transaction-id': txId('tx-proxy') },
    });
    const controller = new AbortController();
    const shape = new Shape(
      new ShapeStream<Row>({
        url: `${proxy.url}/api/organizations/${alice.org.slug}/shapes/pages`,
        headers: { authorization: `Bearer ${alice.token}` },
        signal: controller.signal,
      }),
    );
    try {
      await shape.rows;
      await stack.client.request('POST', path, {
        token: alice.token,
        body: { title: 'after' },
        headers: { 'x-transaction-id': txId('tx-proxy') },
      });
      const deadline = Date.now() + 10_000;
      while (
        Date.now() < deadline &&
        ![...shape.currentValue.values()].some((r: any) => r.title === 'after')
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const titles = [...shape.currentValue.values()].map((r: any) => r.title).sort();
      expect(titles).toEqual(['after', 'before']);
    } finally {
      controller.abort();
    }
  });
});

import { networkInterfaces } from 'node:os';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../src/server.ts';
import { startTestStack, type TestStack } from '../src/testing/api.ts';
import { expectError } from './support/contract.ts';

const TOKEN = 'a-metrics-token-for-prometheus';

let stack: TestStack;
let withToken: ApiServer;
let allInterfaces: ApiServer;
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

beforeAll(async () => {
  stack = await startTestStack();
  const logger = pino({ level: 'silent' });
  [withToken, allInterfaces] = await Promise.all([
    startApiServer({ databaseUrl: stack.cluster.url, logger, config: { metricsToken: TOKEN } }),
    startApiServer({ databaseUrl: stack.cluster.url, logger, hostname: '0.0.0.0' }),
  ]);
});
afterAll(async () => {
  await Promise.all([withToken?.close(), allInterfaces?.close()]);
  await stack?.stop();
});

const metrics = (base: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/api/metrics`, { headers }).then(async (res) => ({
    status: res.status,
    headers: res.headers,
    body: res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text(),
  }));

describe('/api/metrics', () => {
  it('answers a client on this machine when no METRICS_TOKEN is set', async () => {
    const res = await metrics(stack.api.url);
    expect(res.status).toBe(200);
    expect(res.body).toContain('http_requests_total');
  });

  it.skipIf(!external)('refuses a client from another address when no METRICS_TOKEN is set', async () => {
    const res = await metrics(`http://${external}:${allInterfaces.port}`);
    expectError(res, 403, 'FORBIDDEN');
    expect(res.body.message).toContain('METRICS_TOKEN');
    // the rest of the API stays reachable from there
    expect((await fetch(`http://${external}:${allInterfaces.port}/api/health`)).status).toBe(200);
  });

  it('requires the bearer token when METRICS_TOKEN is set, also from this machine', async () => {
    expectError(await metrics(withToken.url), 401, 'UNAUTHENTICATED');
    expectError(await metrics(withToken.url, { authorization: 'Bearer wrong' }), 401, 'UNAUTHENTICATED');
    const res = await metrics(withToken.url, { authorization: `Bearer ${TOKEN}` });
    expect(res.status).toBe(200);
    expect(res.body).toContain('http_requests_total');
  });
});

describe('/api/docs', () => {
  it('loads Swagger UI from this server only, under a content security policy', async () => {
    const page = await fetch(`${stack.api.url}/api/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(sources.length).toBeGreaterThanOrEqual(3);
    for (const source of sources) expect(source, source).toMatch(/^\/api\/docs\//);
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    for (const source of sources) {
      const asset = await fetch(`${stack.api.url}${source}`);
      expect(asset.status, source).toBe(200);
      expect((await asset.text()).length, source).toBeGreaterThan(20);
    }
  });

  it('serves only the files the page needs from the package', async () => {
    for (const path of [
      '/api/docs/package.json',
      '/api/docs/index.html',
      '/api/docs/..%2f..%2fpackage.json',
    ]) {
      expect((await fetch(`${stack.api.url}${path}`)).status, path).toBe(404);
    }
  });
});

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../src/testing/api.ts';

const INDEX = '<!doctype html><title>app</title><div id="root"></div>';
const SCRIPT = 'console.log("app")';
const SECRET = 'not for the web';

let stack: TestStack;
let dir: string;
// one keep-alive connection for every request, as a browser would use
const keepAlive = new Agent({ connections: 1, keepAliveTimeout: 30_000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'web-app-'));
  const root = join(dir, 'web');
  await mkdir(join(root, 'assets'), { recursive: true });
  await writeFile(join(root, 'index.html'), INDEX);
  await writeFile(join(root, 'assets', 'index-1a2b.js'), SCRIPT);
  await writeFile(join(dir, 'secret.txt'), SECRET);
  stack = await startTestStack({ webRoot: root });
});
afterAll(async () => {
  await keepAlive.close();
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function get(path: string, method = 'GET') {
  const started = Date.now();
  const res = await fetch(`${stack.api.url}${path}`, { method, dispatcher: keepAlive } as RequestInit);
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, ms: Date.now() - started };
}

/** A request line sent as is: fetch would normalise `..` and encoded separators away. */
function rawGet(target: string): Promise<string> {
  const { hostname, port } = new URL(stack.api.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
    });
    let response = '';
    socket.on('data', (chunk) => {
      response += chunk;
    });
    socket.on('end', () => resolve(response));
    socket.on('error', reject);
  });
}

describe('the web app on the API port', () => {
  it('answers index.html for / and for deep links of the app (GET and HEAD), with security headers', async () => {
    for (const path of ['/', '/o/demo', '/o/demo/pages/V1StGXR8_Z5jdHi6', '/API/health']) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(res.body, path).toBe(INDEX);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const directive of [
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
      ]) {
        expect(csp, path).toContain(directive);
      }
    }
    const head = await get('/o/demo', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('serves a static file with its type', async () => {
    const res = await get('/assets/index-1a2b.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    expect(res.body).toBe(SCRIPT);
  });

  it('answers 404 JSON at once for an unknown static file such as /favicon.ico, on a kept-alive connection', async () => {
    for (const path of ['/favicon.ico', '/assets/missing.js', '/o/demo/missing.png']) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'NOT_FOUND' });
      expect(res.ms, path).toBeLessThan(2_000);
    }
    // the connection is still good for the next request
    expect((await get('/')).status).toBe(200);
  });

  it('answers 404 to other methods on web paths and leaves /api paths to the API', async () => {
    const post = await fetch(`${stack.api.url}/o/demo`, { method: 'POST' });
    expect(post.status).toBe(404);
    const unknownApi = await get('/api/no-such-route');
    expect(unknownApi.status).toBe(404);
    expect(JSON.parse(unknownApi.body)).toMatchObject({ code: 'NOT_FOUND' });
    expect((await get('/api/health')).status).toBe(200);
  });

  it('never serves a file outside the web root', async () => {
    const attempts = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/..%2fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/..%5csecret.txt',
      '/assets/..\\..\\secret.txt',
      '//secret.txt',
      `/${dir}/secret.txt`,
    ];
    for (const target of attempts) {
      const response = await rawGet(target);
      const status = Number(response.split(' ')[1]);
      expect(status, target).toBeGreaterThanOrEqual(200);
      expect(status, target).toBeLessThan(500);
      expect(response, target).not.toContain(SECRET);
    }
  });
});

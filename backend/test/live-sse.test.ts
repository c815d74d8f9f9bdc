/**
 * The SSE loop both live streams share (core/live-sse.ts) keeps a quiet connection open: with
 * nothing to send, the activity stream writes `: heartbeat` after 15 s and the shape stream
 * `: keep-alive` after 20 s, so proxies do not close them. Each stream then still delivers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../src/testing/api.ts';
import { openSse } from '../src/testing/sse.ts';
import { orgPath, txId } from './support/contract.ts';

/** The shape stream's interval, plus honest margin for a loaded machine. */
const QUIET_MS = 30_000;

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true });
});
afterAll(async () => {
  await stack?.stop();
});

it('writes a keep-alive comment on a quiet activity stream and shape stream', {
  timeout: 90_000,
}, async () => {
  const member = await stack.client.newMember();
  const headers = { authorization: `Bearer ${member.token}` };
  const base = `${stack.api.url}${orgPath(member)}`;
  const snapshot = await fetch(`${base}/shapes/pages?offset=-1`, { headers });
  expect(snapshot.status).toBe(200);
  await snapshot.text();
  const handle = snapshot.headers.get('electric-handle');
  const offset = snapshot.headers.get('electric-offset');
  const activities = await openSse(`${base}/activities/stream`, headers);
  const shape = await openSse(
    `${base}/shapes/pages?offset=${offset}&handle=${handle}&live=true&live_sse=true`,
    headers,
  );
  try {
    expect([activities.status, shape.status]).toEqual([200, 200]);
    const deadline = Date.now() + QUIET_MS;
    while (Date.now() < deadline && !(activities.comments.length > 0 && shape.comments.length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(activities.comments).toContain('heartbeat');
    expect(shape.comments).toContain('keep-alive');

    const res = await stack.client.request('POST', `${orgPath(member)}/pages`, {
      token: member.token,
      headers: { 'x-transaction-id': txId(), 'x-client-id': 'keep-alive-test' },
      body: { title: 'after the quiet' },
    });
    expect(res.status).toBe(201);
    await activities.until((events) => events.some((e) => e.event === 'activity'));
    await shape.until((events) => events.some((e) => e.data?.headers?.operation === 'insert'));
  } finally {
    activities.close();
    shape.close();
  }
});

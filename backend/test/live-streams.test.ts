import pino from 'pino';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../src/core/guards.ts';
import { type ApiServer, startApiServer } from '../src/server.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { openSse, type SseConnection } from '../src/testing/sse.ts';
import { connectDb, orgPath } from './support/contract.ts';

/** A revoked stream must end within this; the long-poll alone would wait 20 s. */
const CUT_WITHIN_MS = 6_000;

let stack: TestStack;
let sql: postgres.Sql;
let second: ApiServer;

beforeAll(async () => {
  stack = await startTestStack({ cdc: true, config: { maxStreamsPerUser: 3 } });
  sql = connectDb(stack.cluster.url);
  second = await startApiServer({ databaseUrl: stack.cluster.url, logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  await second?.close();
  await sql?.end();
  await stack?.stop();
});

interface LiveStreams {
  activities: SseConnection;
  shapeSse: SseConnection;
  longPoll: Promise<Response>;
  /** The requests a client would send to resume, with the same credentials. */
  resume(): Promise<number[]>;
  close(): void;
}

/** An activity SSE stream, a shape SSE stream and a shape long-poll, all open and live. */
async function openLiveStreams(apiUrl: string, member: Member, token: string): Promise<LiveStreams> {
  const headers = { authorization: `Bearer ${token}` };
  const base = `${apiUrl}${orgPath(member)}`;
  const snapshot = await fetch(`${base}/shapes/pages?offset=-1`, { headers });
  expect(snapshot.status).toBe(200);
  await snapshot.text();
  const handle = snapshot.headers.get('electric-handle');
  const offset = snapshot.headers.get('electric-offset');
  const live = `${base}/shapes/pages?offset=${offset}&handle=${handle}&live=true`;
  const activities = await openSse(`${base}/activities/stream`, headers);
  const shapeSse = await openSse(`${live}&live_sse=true`, headers);
  expect([activities.status, shapeSse.status]).toEqual([200, 200]);
  await activities.until((events) => events.some((e) => e.event === 'connected'));
  const abort = new AbortController();
  const longPoll = fetch(live, { headers, signal: abort.signal });
  longPoll.catch(() => {});
  // every stream is registered and waiting before the revocation under test
  await new Promise((r) => setTimeout(r, 300));
  return {
    activities,
    shapeSse,
    longPoll,
    async resume() {
      const answers = await Promise.all([
        fetch(`${base}/activities/stream`, { headers }),
        fetch(`${live}&live_sse=true`, { headers }),
        fetch(live, { headers }),
      ]);
      for (const res of answers) await res.body?.cancel();
      return answers.map((res) => res.status);
    },
    close() {
      activities.close();
      shapeSse.close();
      abort.abort();
    },
  };
}

/** Resolves with how long after `from` every stream had ended; rejects after CUT_WITHIN_MS. */
async function allEnded(streams: LiveStreams, from: number): Promise<number> {
  const ended = Promise.all([
    streams.activities.ended,
    streams.shapeSse.ended,
    streams.longPoll.then((res) => res.text()),
  ]);
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`streams still open ${CUT_WITHIN_MS} ms after revocation`)),
      CUT_WITHIN_MS,
    ),
  );
  await Promise.race([ended, timeout]);
  return Date.now() - from;
}

describe('revoked access ends live streams', () => {
  it('ends every live stream within seconds of sign-out, and refuses to resume', async () => {
    const member = await stack.client.newMember();
    const streams = await openLiveStreams(stack.api.url, member, member.token);
    try {
      const revokedAt = Date.now();
      const out = await stack.client.request('POST', '/api/auth/sign-out', { token: member.token });
      expect(out.status).toBe(204);
      expect(await allEnded(streams, revokedAt)).toBeLessThan(CUT_WITHIN_MS);
      expect(await streams.resume()).toEqual([401, 401, 401]);
    } finally {
      streams.close();
    }
  });

  it('ends every live stream within seconds of the session expiring', async () => {
    const member = await stack.client.newMember();
    const streams = await openLiveStreams(stack.api.url, member, member.token);
    try {
      const expiredAt = Date.now();
      await sql`update sessions set expires_at = now() where token_hash = ${hashToken(member.token)}`;
      expect(await allEnded(streams, expiredAt)).toBeLessThan(CUT_WITHIN_MS);
      expect(await streams.resume()).toEqual([401, 401, 401]);
    } finally {
      streams.close();
    }
  });

  it("ends a removed member's live streams of that organization within seconds, and refuses to resume", async () => {
    const admin = await stack.client.newMember();
    const bob = await stack.client.signUp();
    const added = await stack.client.request('POST', `${orgPath(admin)}/members`, {
      token: admin.token,
      body: { email: bob.user.email, role: 'member' },
    });
    expect(added.status).toBe(201);
    const streams = await openLiveStreams(stack.api.url, admin, bob.token);
    try {
      const removedAt = Date.now();
      const removed = await stack.client.request('DELETE', `${orgPath(admin)}/members/${bob.user.id}`, {
        token: admin.token,
      });
      expect(removed.status).toBe(204);
      expect(await allEnded(streams, removedAt)).toBeLessThan(CUT_WITHIN_MS);
      expect(await streams.resume()).toEqual([404, 404, 404]);
      // the admin's own streams are untouched
      const own = await openSse(`${stack.api.url}${orgPath(admin)}/activities/stream`, {
        authorization: `Bearer ${admin.token}`,
      });
      expect(own.status).toBe(200);
      own.close();
    } finally {
      streams.close();
    }
  });

  it('ends the streams a second API process serves when the session is signed out through the first', async () => {
    const member = await stack.client.newMember();
    const streams = await openLiveStreams(second.url, member, member.token);
    try {
      const revokedAt = Date.now();
      const out = await stack.client.request('POST', '/api/auth/sign-out', { token: member.token });
      expect(out.status).toBe(204);
      expect(await allEnded(streams, revokedAt)).toBeLessThan(CUT_WITHIN_MS);
      expect(await streams.resume()).toEqual([401, 401, 401]);
    } finally {
      streams.close();
    }
  });

  it('keeps delivering to streams whose access is intact', async () => {
    const member = await stack.client.newMember();
    const other = await stack.client.newMember();
    const streams = await openLiveStreams(stack.api.url, member, member.token);
    try {
      await stack.client.request('POST', '/api/auth/sign-out', { token: other.token });
      const write = await stack.client.request('POST', `${orgPath(member)}/pages`, {
        token: member.token,
        body: { title: 'still live' },
      });
      expect(write.status).toBe(201);
      await streams.activities.until((events) => events.some((e) => e.event === 'activity'));
      await streams.shapeSse.until((events) => events.some((e) => e.data?.value?.title === 'still live'));
      expect((await streams.longPoll).status).toBe(200);
    } finally {
      streams.close();
    }
  });
});

describe('one cap on the SSE streams of a user', () => {
  it('counts activity and shape SSE streams together and answers 429 RATE_LIMITED with Retry-After', async () => {
    const member = await stack.client.newMember();
    const headers = { authorization: `Bearer ${member.token}` };
    const base = `${stack.api.url}${orgPath(member)}`;
    const snapshot = await fetch(`${base}/shapes/pages?offset=-1`, { headers });
    await snapshot.text();
    const sseUrl = `${base}/shapes/pages?offset=${snapshot.headers.get('electric-offset')}&handle=${snapshot.headers.get('electric-handle')}&live=true&live_sse=true`;
    const open = [
      await openSse(`${base}/activities/stream`, headers),
      await openSse(sseUrl, headers),
      await openSse(sseUrl, headers),
    ];
    try {
      expect(open.map((sse) => sse.status)).toEqual([200, 200, 200]);
      for (const url of [sseUrl, `${base}/activities/stream`]) {
        const refused = await fetch(url, { headers });
        expect(refused.status).toBe(429);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(await refused.json()).toMatchObject({ code: 'RATE_LIMITED', error: 'rate_limited' });
      }
      // long-polls are not streams that stay open: the cap does not apply to them
      const poll = fetch(sseUrl.replace('&live_sse=true', ''), { headers });
      await stack.client.request('POST', `${orgPath(member)}/pages`, {
        token: member.token,
        body: { title: 'wake' },
      });
      const answered = await poll;
      expect(answered.status).toBe(200);
      await answered.text();
    } finally {
      for (const sse of open) sse.close();
    }
  });
});

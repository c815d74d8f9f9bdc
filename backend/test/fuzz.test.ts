/**
 * Guarantee 9 as a property: whatever a client sends to the tracked routes (methods, ids in
 * paths, query strings, transaction headers, bodies, content types, credentials), the API
 * answers without a 5xx, every 4xx is the error JSON, a refused write leaves nothing behind, and
 * an accepted write is applied completely and exactly as answered.
 */
import fc from 'fast-check';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../src/app.ts';
import { type Member, startTestStack, type TestStack } from '../src/testing/api.ts';
import { connectDb, txId, writeCounts } from './support/contract.ts';

let stack: TestStack;
let sql: postgres.Sql;
let alice: Member;
let bob: Member;
/** Ids of bob's entities: another organization's, for cross-tenant attempts. */
const bobIds: Record<Collection, string[]> = { pages: [], attachments: [] };
/** Transaction ids applied so far, so that the fuzzer replays some of them. */
const appliedTx: string[] = [];

type Collection = 'pages' | 'attachments';
const TABLE: Record<Collection, string> = { pages: 'pages', attachments: 'attachments' };
const ENTITY_TYPE: Record<Collection, string> = { pages: 'page', attachments: 'attachment' };
const ID = /^[A-Za-z0-9_-]{8,64}$/;

const validPage = () => ({ title: 'Fuzzed page', content: 'some content' });
const validAttachment = () => ({
  filename: 'fuzz.bin',
  contentType: 'application/octet-stream',
  size: 10,
  url: 'https://files.example.com/fuzz.bin',
});

beforeAll(async () => {
  stack = await startTestStack();
  sql = connectDb(stack.cluster.url);
  [alice, bob] = await Promise.all([stack.client.newMember(), stack.client.newMember()]);
  for (const [member, ids] of [
    [alice, null],
    [bob, bobIds],
  ] as const) {
    for (let i = 0; i < 4; i++) {
      const page = await stack.client.request('POST', `/api/organizations/${member.org.id}/pages`, {
        token: member.token,
        body: { title: `seed page ${i}` },
      });
      const attachment = await stack.client.request(
        'POST',
        `/api/organizations/${member.org.id}/attachments`,
        {
          token: member.token,
          body: { ...validAttachment(), pageId: page.body.id },
        },
      );
      expect([page.status, attachment.status]).toEqual([201, 201]);
      ids?.pages.push(page.body.id);
      ids?.attachments.push(attachment.body.id);
      if (i === 3) {
        for (const [collection, id] of [
          ['pages', page.body.id],
          ['attachments', attachment.body.id],
        ]) {
          const deleted = await stack.client.request(
            'DELETE',
            `/api/organizations/${member.org.id}/${collection}/${id}`,
            {
              token: member.token,
            },
          );
          expect(deleted.status).toBe(200);
        }
      }
    }
  }
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

// ── Arbitraries ──────────────────────────────────────────────────────────────────────────────

/** Path segments that name nothing: encoded junk, unicode, traversal, very long. */
const junkSegment = fc.oneof(
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'grapheme', maxLength: 20 }).map(encodeURIComponent),
  fc.constantFrom(
    '%ZZ',
    '%00',
    '%2F',
    '..%2F..',
    '%E0%A4%A',
    'a%20b',
    '%25',
    '__proto__',
    'constructor',
    'x'.repeat(300),
  ),
);

/** An organization reference: ours (id or slug), theirs, or junk. */
type OrgName = 'own-slug' | 'own-id' | 'other-slug' | 'other-id';
const orgRef = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom<OrgName>('own-slug', 'own-id') },
  { weight: 2, arbitrary: fc.constantFrom<OrgName>('other-slug', 'other-id') },
  { weight: 1, arbitrary: junkSegment.map((junk) => ({ junk })) },
);

/** An entity id in the path: mostly one of our live ones, else deleted, the other kind, theirs, unknown, junk. */
const itemRef = fc.oneof(
  { weight: 10, arbitrary: fc.nat().map((index) => ({ kind: 'own-live' as const, index })) },
  { weight: 2, arbitrary: fc.nat().map((index) => ({ kind: 'own-deleted' as const, index })) },
  { weight: 1, arbitrary: fc.nat().map((index) => ({ kind: 'own-other-kind' as const, index })) },
  { weight: 2, arbitrary: fc.nat().map((index) => ({ kind: 'other-org' as const, index })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unknown' as const }) },
  { weight: 1, arbitrary: junkSegment.map((junk) => ({ kind: 'junk' as const, junk })) },
);
const onCollection = fc.constant({ kind: 'collection' as const });
/** Mostly one of the five routes, sometimes any method on any path. */
const route = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ method: fc.constantFrom('GET', 'POST', 'POST'), target: onCollection }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ method: fc.constantFrom('GET', 'PATCH', 'PATCH', 'DELETE'), target: itemRef }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS'),
      target: fc.oneof(onCollection, itemRef),
    }),
  },
);

/** Header-safe text: unicode travels as its UTF-8 bytes (as real clients send it). */
const asHeaderValue = (s: string) =>
  Buffer.from(s, 'utf8')
    .toString('latin1')
    .replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
const validId = fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/);
const invalidId = fc.oneof(
  fc.string({ maxLength: 80 }).map(asHeaderValue),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map(asHeaderValue),
  fc.constantFrom(
    'short',
    'x'.repeat(65),
    'has space in it',
    'ünïcödé-id-123',
    'a/b/c/d/e',
    'x'.repeat(6000),
    '',
    'tx;drop table',
  ),
);

const transactionHeader = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'absent' as const }) },
  { weight: 6, arbitrary: fc.constant({ kind: 'fresh' as const }) },
  { weight: 3, arbitrary: fc.nat().map((index) => ({ kind: 'replay' as const, index })) },
  { weight: 1, arbitrary: invalidId.map((value) => ({ kind: 'value' as const, value })) },
  { weight: 1, arbitrary: validId.map((value) => ({ kind: 'value' as const, value })) },
);
const clientHeader = fc.option(
  fc.oneof({ weight: 4, arbitrary: validId }, { weight: 1, arbitrary: invalidId }),
  { nil: undefined },
);
const expectedHeader = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'absent' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'current' as const }) },
  { weight: 2, arbitrary: validId.map((value) => ({ kind: 'value' as const, value })) },
  { weight: 1, arbitrary: invalidId.map((value) => ({ kind: 'value' as const, value })) },
);

const hugeString = fc.constantFrom(501, 5_000, 500_001).map((n) => 'x'.repeat(n));
/** Any value a field might get: right or wrong type, unicode, huge, nested, hostile keys. */
const fieldValue = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
  // any UTF-16 code units, lone surrogates included: stored exactly or refused, never altered
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: hugeString },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'https://example.com/x',
      'image/png',
      'ftp://x',
      '\u0000',
      '  padded  ',
      'a'.repeat(64),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      pageRef: fc.constantFrom('own-live', 'own-live', 'own-deleted', 'other-org'),
      index: fc.nat(),
    }),
  },
);
const hostileKeys = fc.subarray([
  '__proto__',
  'constructor',
  'prototype',
  'id',
  'organizationId',
  'transactions',
  'lastClientId',
  'deletedAt',
  'createdBy',
]);

const bodySpec = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' as const }) },
  {
    weight: 24,
    arbitrary: fc.record({
      kind: fc.constant('object' as const),
      start: fc.constantFrom('valid', 'valid', 'valid', 'empty'),
      /** For attachments: the page it hangs on, ours (live or deleted), theirs, unknown or none. */
      pageId: fc.option(
        fc.oneof(
          fc.constant(null),
          fc.record({
            pageRef: fc.constantFrom('own-live', 'own-live', 'own-deleted', 'other-org'),
            index: fc.nat(),
          }),
          validId,
        ),
        { nil: undefined },
      ),
      overrides: fc.oneof(
        { weight: 2, arbitrary: fc.constant({}) },
        fc.dictionary(
          fc.constantFrom('title', 'content', 'filename', 'contentType', 'size', 'url', 'pageId', 'id'),
          fieldValue,
          { maxKeys: 3 },
        ),
      ),
      dropped: fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        fc.subarray(['title', 'filename', 'contentType', 'size', 'url']),
      ),
      hostile: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, hostileKeys),
      hostileValue: fc.jsonValue({ maxDepth: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((value) => ({ kind: 'json' as const, value })) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 50 }),
        fc.constantFrom('{', '{"title":', '[1,2', 'null', '{"title":"x"}}', '\uFEFF{"title":"bom"}'),
      )
      .map((text) => ({ kind: 'raw' as const, text })),
  },
  {
    weight: 1,
    arbitrary: fc.constant({
      kind: 'raw' as const,
      text: `{"title":"big","content":"${'z'.repeat(1_100_000)}"}`,
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 50, max: 2000 })
      .map((depth) => ({ kind: 'raw' as const, text: `{"title":${'['.repeat(depth)}${']'.repeat(depth)}}` })),
  },
);
const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      undefined,
      'text/plain',
      'application/json; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'APPLICATION/JSON',
      'application/merge-patch+json',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map(asHeaderValue) },
);

const queryValue = fc.oneof(
  fc.integer({ min: -5, max: 600 }).map(String),
  fc.constantFrom('', '1e2', '0x10', '1.5', 'NaN', 'Infinity', '99999999999999999999', '-0', ' 5'),
  fc.string({ maxLength: 20 }),
);
const query = fc.record({
  limit: fc.option(queryValue, { nil: undefined }),
  cursor: fc.option(
    fc.oneof(
      fc.constantFrom('own-live', 'own-deleted', 'other-org').map((ref) => ({ ref })),
      validId.map((raw) => ({ raw })),
      fc.string({ maxLength: 20 }).map((raw) => ({ raw })),
    ),
    { nil: undefined },
  ),
  extra: fc.subarray([
    '__proto__=1',
    '__proto__[x]=1',
    'limit=2&limit=3',
    'cursor=a&cursor=b',
    'constructor=x',
    '%ZZ=%ZZ',
    'title=sneaky',
  ]),
});

const credentials = fc.oneof(
  { weight: 14, arbitrary: fc.constant('bearer' as const) },
  { weight: 2, arbitrary: fc.constant('cookie' as const) },
  { weight: 1, arbitrary: fc.constantFrom('none' as const, 'junk' as const) },
);

const fuzzRequest = fc.record({
  /** Send the last applied write again, byte for byte: it must be a replay (200, X-Idempotent-Hit). */
  repeatLast: fc.boolean().map((b) => b && Math.random() < 0.2),
  route,
  collection: fc.constantFrom<Collection>('pages', 'attachments'),
  org: orgRef,
  query,
  transaction: transactionHeader,
  client: clientHeader,
  expected: expectedHeader,
  body: bodySpec,
  contentType,
  credentials,
});
type FuzzRequest = (typeof fuzzRequest extends fc.Arbitrary<infer T> ? Omit<T, 'route'> : never) &
  (typeof route extends fc.Arbitrary<infer R> ? R : never);

// ── Running one request ──────────────────────────────────────────────────────────────────────

const pick = <T>(list: T[], index: number): T | undefined =>
  list.length ? list[index % list.length] : undefined;
const otherKind = (c: Collection): Collection => (c === 'pages' ? 'attachments' : 'pages');

async function ownIds(collection: Collection, live: boolean): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from ${sql(TABLE[collection])}
    where organization_id = ${alice.org.id} and (deleted_at is null) = ${live}
    order by created_at, id limit 40`;
  return rows.map((r) => r.id);
}

async function resolveEntityId(
  ref: { kind: string; index?: number },
  collection: Collection,
): Promise<string | undefined> {
  const index = ref.index ?? 0;
  if (ref.kind === 'own-live') return pick(await ownIds(collection, true), index);
  if (ref.kind === 'own-deleted') return pick(await ownIds(collection, false), index);
  if (ref.kind === 'own-other-kind') return pick(await ownIds(otherKind(collection), true), index);
  if (ref.kind === 'other-org') return pick(bobIds[collection], index);
  if (ref.kind === 'unknown') return `unknown-${txId()}`;
  return undefined;
}

interface Resolved {
  path: string;
  init: RequestInit;
  collection: Collection;
  /** The row a write to this path would touch (symbolic targets only). */
  targetId: string | undefined;
  sentTransaction: string | undefined;
  requestBody: unknown;
  /** Whether the method and path name one of the five tracked routes. */
  routed: boolean;
  authenticated: boolean;
  ownOrg: boolean | undefined;
}

async function resolve(req: FuzzRequest): Promise<Resolved> {
  const { collection } = req;
  const named: OrgName | { junk: string } = req.org;
  const byName: Record<OrgName, string> = {
    'own-slug': alice.org.slug,
    'own-id': alice.org.id,
    'other-slug': bob.org.slug,
    'other-id': bob.org.id,
  };
  const org = typeof named === 'object' ? named.junk : byName[named];
  const ownOrg = typeof named === 'object' ? undefined : named.startsWith('own');
  let targetId: string | undefined;
  let idSegment: string | undefined;
  if (req.target.kind === 'junk') idSegment = req.target.junk;
  else if (req.target.kind !== 'collection') {
    targetId = await resolveEntityId(req.target, collection);
    idSegment = targetId ?? 'absent-entity-id';
  }

  const params: string[] = [];
  if (req.query.limit !== undefined) params.push(`limit=${encodeURIComponent(req.query.limit)}`);
  if (req.query.cursor !== undefined) {
    const cursor =
      'ref' in req.query.cursor
        ? await resolveEntityId({ kind: req.query.cursor.ref, index: 0 }, collection)
        : req.query.cursor.raw;
    params.push(`cursor=${encodeURIComponent(cursor ?? 'no-cursor-here')}`);
  }
  params.push(...req.query.extra);
  const path = `/api/organizations/${org}/${collection}${idSegment === undefined ? '' : `/${idSegment}`}${params.length ? `?${params.join('&')}` : ''}`;

  const headers: Record<string, string> = {};
  if (req.credentials === 'bearer') headers.authorization = `Bearer ${alice.token}`;
  if (req.credentials === 'cookie') headers.cookie = `sync_session=${alice.token}`;
  if (req.credentials === 'junk') headers.authorization = 'Bearer junk-token';
  let sentTransaction: string | undefined;
  if (req.transaction.kind === 'fresh') sentTransaction = txId('fz');
  if (req.transaction.kind === 'replay')
    sentTransaction = pick(appliedTx, req.transaction.index) ?? txId('fz');
  if (req.transaction.kind === 'value') sentTransaction = req.transaction.value;
  if (sentTransaction !== undefined) headers['x-transaction-id'] = sentTransaction;
  if (req.client !== undefined) headers['x-client-id'] = req.client;
  if (req.expected.kind === 'value') headers['x-expected-transaction-id'] = req.expected.value;
  if (req.expected.kind === 'current' && targetId) {
    const [row] = await sql`
      select coalesce(transactions->>'update', transactions->>'insert') as version
      from ${sql(TABLE[collection])} where id = ${targetId}`;
    if (row?.version) headers['x-expected-transaction-id'] = row.version;
  }

  let requestBody: unknown;
  let text: string | undefined;
  if (req.body.kind === 'object') {
    const base: Record<string, unknown> =
      req.body.start === 'empty' ? {} : collection === 'pages' ? validPage() : validAttachment();
    if (collection === 'attachments' && req.body.pageId !== undefined) base.pageId = req.body.pageId;
    for (const key of req.body.dropped) delete base[key];
    Object.assign(base, req.body.overrides);
    for (const [key, value] of Object.entries(base)) {
      // { pageRef } stands for a page of ours (live or deleted) or of the other organization
      if (value && typeof value === 'object' && 'pageRef' in value) {
        const { pageRef, index } = value as { pageRef: string; index: number };
        base[key] = (await resolveEntityId({ kind: pageRef, index }, 'pages')) ?? null;
      }
    }
    for (const key of req.body.hostile) {
      Object.defineProperty(base, key, {
        value: req.body.hostileValue,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    }
    requestBody = base;
    text = JSON.stringify(base);
  } else if (req.body.kind === 'json') {
    requestBody = req.body.value;
    text = JSON.stringify(req.body.value);
  } else if (req.body.kind === 'raw') {
    text = req.body.text;
  }
  const method = req.method;
  const hasBody = text !== undefined && !['GET', 'HEAD'].includes(method);
  if (hasBody && req.contentType !== undefined) headers['content-type'] = req.contentType;

  const onItem = idSegment !== undefined && req.target.kind !== 'junk';
  const routed =
    typeof req.org !== 'object' &&
    ((idSegment === undefined && ['GET', 'HEAD', 'POST'].includes(method)) ||
      (onItem && ['GET', 'HEAD', 'PATCH', 'DELETE'].includes(method)));
  return {
    path,
    init: { method, headers, body: hasBody ? text : undefined },
    collection,
    targetId: onItem ? targetId : undefined,
    sentTransaction,
    requestBody: hasBody ? requestBody : undefined,
    routed,
    authenticated: req.credentials === 'bearer' || req.credentials === 'cookie',
    ownOrg,
  };
}

async function rowOf(collection: Collection, id: string | undefined) {
  if (!id) return undefined;
  const [row] = await sql`select * from ${sql(TABLE[collection])} where id = ${id}`;
  return row;
}
async function isApplied(transactionId: string | undefined): Promise<boolean> {
  if (!transactionId) return false;
  const [row] = await sql`select 1 from applied_transactions where transaction_id = ${transactionId}`;
  return row !== undefined;
}

const ENTITY_FIELDS: Record<Collection, Record<string, string>> = {
  pages: { title: 'title', content: 'content' },
  attachments: {
    pageId: 'page_id',
    filename: 'filename',
    contentType: 'content_type',
    size: 'size',
    url: 'url',
  },
};
const TRIMMED = new Set(['title', 'filename']);

/** The stored row says exactly what the answer says. */
function expectRowMatchesAnswer(collection: Collection, row: any, body: any) {
  expect(row, 'the answered entity is stored').toBeDefined();
  expect(row.organization_id).toBe(alice.org.id);
  expect(row.transactions).toEqual(body.transactions);
  expect(row.last_client_id).toBe(body.lastClientId);
  expect(row.deleted_at === null).toBe(body.deletedAt === null);
  for (const [property, column] of Object.entries(ENTITY_FIELDS[collection])) {
    const stored = column === 'size' ? Number(row[column]) : row[column];
    expect(stored, property).toEqual(body[property]);
  }
}

/** What the run exercised, by method and status (printed with FUZZ_STATS=1). */
const outcomes = new Map<string, number>();

/** The last write that was applied, for exact repeats. */
let lastApplied: { resolved: Resolved; req: FuzzRequest } | undefined;

async function check(generated: FuzzRequest) {
  const repeat = generated.repeatLast && lastApplied !== undefined;
  const req = repeat ? lastApplied!.req : generated;
  const r = repeat ? lastApplied!.resolved : await resolve(req);
  const isWrite = ['POST', 'PATCH', 'DELETE', 'PUT'].includes(req.method);
  const countsBefore = await writeCounts(sql);
  const rowBefore = await rowOf(r.collection, r.targetId);
  const txAppliedBefore = await isApplied(r.sentTransaction);

  const res = await fetch(`${stack.api.url}${r.path}`, r.init);
  const text = await res.text();
  const label = `${req.method} ${r.path.slice(0, 200)} → ${res.status} ${text.slice(0, 300)}`;
  const outcome = `${req.method} ${res.status}${res.headers.get('x-idempotent-hit') ? ' hit' : ''}`;
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);

  // never a 5xx
  expect(res.status, label).toBeLessThan(500);

  // every 4xx is the error JSON
  let body: any = null;
  if (res.status >= 400 && req.method !== 'HEAD') {
    expect(res.headers.get('content-type'), label).toMatch(/^application\/json/);
    body = JSON.parse(text);
    expect(body, label).toMatchObject({
      error: expect.stringMatching(/^[a-z_]+$/),
      code: expect.stringMatching(/^[A-Z_]+$/),
      message: expect.any(String),
    });
    if (body.code === 'VALIDATION_FAILED' || body.code === 'INVALID_HEADER')
      expect(Array.isArray(body.issues), label).toBe(true);
  } else if (req.method !== 'HEAD' && text) {
    body = JSON.parse(text);
  }

  if (repeat) {
    expect(res.status, label).toBe(200);
    expect(res.headers.get('x-idempotent-hit'), label).toBe('true');
  }

  // the body limit comes first, then the route, the credentials and the organization
  const bodyBytes = typeof r.init.body === 'string' ? Buffer.byteLength(r.init.body) : 0;
  if (res.status === 413) expect(bodyBytes, label).toBeGreaterThan(MAX_BODY_BYTES);
  if (bodyBytes <= MAX_BODY_BYTES) {
    if (r.routed && !r.authenticated) expect(res.status, label).toBe(401);
    if (r.routed && r.authenticated && r.ownOrg === false) expect(res.status, label).toBe(404);
    // (OPTIONS may be answered by the CORS preflight)
    if (!r.routed && req.method !== 'OPTIONS' && typeof req.org !== 'object' && req.target.kind !== 'junk')
      expect(res.status, label).toBe(404);
  }

  const countsAfter = await writeCounts(sql);
  if (!isWrite || res.status >= 300) {
    // a read or a refused write leaves nothing behind
    expect(countsAfter, label).toEqual(countsBefore);
    expect(await rowOf(r.collection, r.targetId), label).toEqual(rowBefore);
    if (!txAppliedBefore) expect(await isApplied(r.sentTransaction), label).toBe(false);
  }

  if (!isWrite && res.status === 200 && req.method === 'GET') {
    const items = r.targetId === undefined ? body.items : [body];
    if (r.targetId === undefined)
      expect(body.nextCursor === null || ID.test(body.nextCursor), label).toBe(true);
    for (const item of items) {
      expect(item.organizationId, label).toBe(alice.org.id);
      expect(item.deletedAt, label).toBeNull();
    }
  }

  if (isWrite && res.status < 300) {
    expect(['POST', 'PATCH', 'DELETE'], label).toContain(req.method);
    const answeredTx = res.headers.get('x-transaction-id');
    expect(answeredTx, label).toMatch(ID);
    if (r.sentTransaction !== undefined) expect(answeredTx, label).toBe(r.sentTransaction);
    const hit = res.headers.get('x-idempotent-hit') === 'true';
    const table = r.collection;
    if (hit) {
      // a replay applies nothing and answers the entity as it is now
      expect(res.status, label).toBe(200);
      expect(txAppliedBefore, label).toBe(true);
      expect(countsAfter, label).toEqual(countsBefore);
      expect(await rowOf(table, r.targetId), label).toEqual(rowBefore);
      const [claim] =
        await sql`select entity_id from applied_transactions where transaction_id = ${answeredTx}`;
      expect(claim?.entity_id, label).toBe(body.id);
      expectRowMatchesAnswer(table, await rowOf(table, body.id), body);
    } else {
      expect(txAppliedBefore, label).toBe(false);
      expect(countsAfter.applied, label).toBe(countsBefore.applied + 1);
      const created = req.method === 'POST' ? 1 : 0;
      expect(countsAfter[table], label).toBe(countsBefore[table] + created);
      expect(countsAfter[table === 'pages' ? 'attachments' : 'pages'], label).toBe(
        countsBefore[table === 'pages' ? 'attachments' : 'pages'],
      );
      const action = ({ POST: 'create', PATCH: 'update', DELETE: 'delete' } as Record<string, string>)[
        req.method
      ];
      const [claim] = await sql`select * from applied_transactions where transaction_id = ${answeredTx}`;
      expect(claim, label).toMatchObject({
        organization_id: alice.org.id,
        entity_type: ENTITY_TYPE[table],
        entity_id: body.id,
        action,
      });
      expect(res.status, label).toBe(req.method === 'POST' ? 201 : 200);
      const slot = ({ POST: 'insert', PATCH: 'update', DELETE: 'delete' } as Record<string, string>)[
        req.method
      ]!;
      expect(body.transactions[slot], label).toBe(answeredTx);
      if (req.method === 'DELETE') expect(body.deletedAt, label).not.toBeNull();
      else expect(body.deletedAt, label).toBeNull();
      if (req.method !== 'POST') expect(body.id, label).toBe(r.targetId);
      expectRowMatchesAnswer(table, await rowOf(table, body.id), body);
      // the fields sent are the fields stored
      const sent = JSON.parse(JSON.stringify(r.requestBody ?? null)) as Record<string, unknown> | null;
      if (req.method !== 'DELETE' && sent && typeof sent === 'object') {
        for (const property of Object.keys(ENTITY_FIELDS[table])) {
          if (!Object.hasOwn(sent, property)) continue;
          const value = sent[property];
          expect(body[property], `${label} (${property})`).toEqual(
            TRIMMED.has(property) ? (value as string).trim() : value,
          );
        }
        if (req.method === 'POST' && Object.hasOwn(sent, 'id')) expect(body.id, label).toBe(sent.id);
      }
      // a page named by this write was a live page of ours (it may be deleted later, not before)
      const namedPage =
        req.method !== 'DELETE' && sent && typeof sent === 'object' && Object.hasOwn(sent, 'pageId');
      if (table === 'attachments' && namedPage && body.pageId !== null) {
        const [page] = await sql`select organization_id, deleted_at from pages where id = ${body.pageId}`;
        expect(page, label).toEqual({ organization_id: alice.org.id, deleted_at: null });
      }
      appliedTx.push(answeredTx!);
      if (r.sentTransaction !== undefined) lastApplied = { resolved: r, req };
    }
  }
}

describe('fuzzed requests to the tracked routes', () => {
  it('never answer 5xx, always answer 4xx as error JSON, never write partially, and apply every 2xx write fully', async () => {
    const bobBefore = await sql`
      select 'page' as kind, to_jsonb(p) as row from pages p where organization_id = ${bob.org.id}
      union all select 'attachment', to_jsonb(a) from attachments a where organization_id = ${bob.org.id}
      order by 1, 2`;
    const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async ({ route, ...rest }) => {
        await check({ ...rest, ...route });
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300), seed, endOnFailure: true },
    );
    if (process.env.FUZZ_STATS) console.log([...outcomes].sort());
    // bob's organization was only ever attacked: nothing of it changed
    const bobAfter = await sql`
      select 'page' as kind, to_jsonb(p) as row from pages p where organization_id = ${bob.org.id}
      union all select 'attachment', to_jsonb(a) from attachments a where organization_id = ${bob.org.id}
      order by 1, 2`;
    expect(bobAfter).toEqual(bobBefore);
    // every transaction id stamped on a row was claimed for that row, in the row's organization
    const unclaimed = await sql`
      select t.id, slot.key, slot.value from (
        select id, organization_id, transactions, 'page' as type from pages
        union all select id, organization_id, transactions, 'attachment' from attachments
      ) t, jsonb_each_text(t.transactions) slot
      where slot.value is not null and not exists (
        select 1 from applied_transactions a
        where a.transaction_id = slot.value and a.entity_id = t.id and a.organization_id = t.organization_id
          and a.entity_type = t.type
          and a.action = case slot.key when 'insert' then 'create' else slot.key end)`;
    expect(unclaimed).toEqual([]);
    // no attachment hangs on another organization's page
    const crossed = await sql`
      select a.id from attachments a join pages p on p.id = a.page_id where p.organization_id <> a.organization_id`;
    expect(crossed).toEqual([]);
    // the fuzz reached the write path too: of 300 runs about 20 apply (14–30 over seeds 1–8, 9 once
    // in a full run), so a floor of 11 failed now and then; 5 is well below anything seen
    expect(appliedTx.length).toBeGreaterThanOrEqual(5);
  });
});

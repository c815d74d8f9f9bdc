/**
 * Live shapes of every tracked entity in the Electric HTTP protocol, served from the activity log.
 *
 *   subset__* ──► { metadata, data }: a filtered snapshot with its log position and visibility
 *   offset=-1 ──┬─ log=changes_only ─► up-to-date only, electric-offset = head of the log
 *               └─ snapshot chunk 1 (≤ 1,000 rows; the log position S is read first)
 *                     more rows ─► electric-offset = snapshot_<S, last row, visibility, rows>,
 *                                  and the next chunk is read now (read ahead of its request)
 *   offset=snapshot_… ─► next chunk (twice the rows, ≤ CHUNK; the one read ahead if held); the
 *                        last one ends with snapshot-end + up-to-date and electric-offset = S,
 *                        so the log brings every change since chunk 1
 *   (either, while the organization's log head is still the S of the shape's last snapshot:
 *    the chunk's bytes as sent before, held for the next client; snapshot-cache.ts)
 *   offset=O, handle=H ─┬─ H is not this log's handle (unknown, or CDC resynced) ─► 409 must-refetch
 *   (offset=now: no     ├─ O before the retention watermark ──► 409 must-refetch, renewed handle
 *    handle needed)     ├─ live absent ─► changes after O (≤ PAGE), up-to-date when caught up
 *                       ├─ live=true ───► changes after O, or wait for the CDC worker's NOTIFY
 *                       │                 (≤ LONG_POLL_MS), then up-to-date with a new cursor;
 *                       │                 an answer after a wait, shared by every request woken
 *                       │                 with it, is prepared once per origin, handle and cursor
 *                       │                 and goes straight to Node (straight-response.ts)
 *                       └─ live_sse ────► one SSE response: batches, each closed by up-to-date
 *                       (live answers carry no electric-schema: the client keeps its first one)
 *   a TRUNCATE in the log (it renames the log) ─► 409 must-refetch, new handle; SSE: stream ends
 *
 * The caller's organization and the entity type decide the rows; client-sent `table`, `where`
 * and `params` are ignored (or, in proxy mode, replaced by server-side values). `columns` and a
 * subset's where clause can only narrow them: `columns` to some of the entity's own columns,
 * primary key included (shape-columns.ts), which every response of the shape follows (schema
 * header, snapshot, log, handle); a subset's where to fewer rows (shape-subset.ts).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { activityId } from '@sync/db/lsn';
import { memoized } from '@sync/db/memo';
import type { TrackedTable } from '@sync/db/tracked-tables';
import type { Context } from 'hono';
import type { AddedHeaders, AppEnv } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { currentOrganization, requireMember } from '../../core/guards.ts';
import { streamLiveSse } from '../../core/live-sse.ts';
import { type LiveKind, liveSignal, liveStream } from '../../core/live-stream.ts';
import { bearerSecurity, errorResponses, OrgParam } from '../../core/openapi.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { readAhead } from '../../core/read-ahead.ts';
import { prepareStraightAnswer, type StraightAnswer, sendStraight } from '../../core/straight-response.ts';
import type { TrackedEntityDefinition } from '../../core/tracked/tracked-entity.ts';
import {
  ELECTRIC_HEADER,
  ELECTRIC_PARAM,
  LIVE_CACHE_CONTROL,
  LOG_MODE,
  OFFSET_BEFORE_ALL,
  SUBSET_PARAM,
} from './electric-protocol.ts';
import { parseShapeColumns, type ShapeColumns } from './shape-columns.ts';
import {
  type EncodedLogPage,
  encodeLogPage,
  MUST_REFETCH,
  messageArray,
  nextCursor,
  parseShapeOffset,
  type ShapeOffset,
  type SnapshotChunkOffset,
  shapeSchemaHeader,
  snapshotChunkOffset,
  snapshotEndMessage,
  subsetMetadata,
  upToDateMessage,
} from './shape-messages.ts';
import {
  isHandleOf,
  isPruned,
  type LogPosition,
  logEndReadAt,
  readLogHead,
  readLogPage,
  readLogState,
  readSharedLogState,
  readSnapshotChunk,
  readSnapshotStart,
  readSubsetSnapshot,
  renewedHandle,
  type ShapeLogState,
  type SnapshotChunk,
  type SnapshotCursor,
  shapeHandle,
  snapshotStartOf,
} from './shape-operations.ts';
import { proxyShape } from './shape-proxy.ts';
import { isSubsetRequest, parseSubsetRequest } from './shape-subset.ts';
import { type EncodedChunk, snapshotCache } from './snapshot-cache.ts';

const PAGE = 1_000;
const RECHECK_MS = 2_000;
const SSE_KEEP_ALIVE_MS = 20_000;

const JSON_CONTENT = { 'content-type': 'application/json' };
/** Every shape answer but a live one: a snapshot is read anew, and any answer is per caller. */
const SHAPE_CACHE = { 'cache-control': 'private, no-store', vary: 'authorization, cookie' };
const LIVE_CACHE = { ...SHAPE_CACHE, 'cache-control': LIVE_CACHE_CONTROL };

const ShapeQuery = z
  .object({
    offset: z
      .string()
      .openapi({ description: '`-1` (snapshot), `now`, or `<lsn>_<position>` from electric-offset' }),
    handle: z.string().optional(),
    live: z.enum(['true', 'false']).optional(),
    cursor: z.string().optional(),
    live_sse: z.enum(['true', 'false']).optional(),
    experimental_live_sse: z.enum(['true', 'false']).optional(),
    log: z.enum([LOG_MODE.full, LOG_MODE.changesOnly]).optional(),
    [ELECTRIC_PARAM.columns]: z.string().optional().openapi({
      description:
        'Only these columns in every row (snapshot, changes, `electric-schema`): comma-separated names, `"quoted"` as the official client sends them; the primary key `id` must be among them. An update that changed none of them is not sent. Unknown column or no `id`: 400',
    }),
    [SUBSET_PARAM.where]: z.string().optional().openapi({
      description:
        "Subset snapshot: a where clause over the shape's columns with `$n` placeholders (comparisons, AND/OR/NOT, IS NULL, LIKE, = ANY); answered as `{ metadata, data }`",
    }),
    [SUBSET_PARAM.params]: z.string().optional().openapi({ description: 'JSON object of `$n` values' }),
    [SUBSET_PARAM.orderBy]: z
      .string()
      .optional()
      .openapi({ description: '`"column" [ASC|DESC] [NULLS FIRST|LAST]`, …' }),
    [SUBSET_PARAM.limit]: z.string().optional(),
    [SUBSET_PARAM.offset]: z.string().optional(),
  })
  .loose();

type ShapeQueryValue = z.infer<typeof ShapeQuery>;

/** Live requests hold their access while they wait or stream (live-stream.ts). */
function shapeStreamKind(c: Context<AppEnv>): LiveKind {
  const query = c.req.query(); // one pass over the query string, not one per name
  if (query.live !== 'true') return null;
  return query.live_sse === 'true' || query.experimental_live_sse === 'true' ? 'sse' : 'poll';
}

export function shapeRoutes(definition: TrackedEntityDefinition) {
  const tracked = definition.tracked;
  const route = createRoute({
    operationId: `stream${definition.singular}Shape`,
    tags: ['shapes'],
    method: 'get',
    path: `/organizations/{org}/shapes/${definition.plural}`,
    middleware: [requireMember, liveStream(shapeStreamKind)],
    security: bearerSecurity,
    request: { params: OrgParam, query: ShapeQuery },
    responses: {
      200: {
        content: { 'application/json': { schema: z.array(z.record(z.string(), z.unknown())) } },
        description: `Electric shape log of the organization's live ${definition.plural}`,
      },
      409: { description: 'must-refetch: unknown or expired handle, or an offset older than the log' },
      ...errorResponses(400, 401, 404, 429),
    },
  });
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const query = c.req.valid('query');
    const organizationId = currentOrganization(c).id;
    for (const [name, value] of Object.entries(SHAPE_CACHE)) c.header(name, value);
    const { electricUrl } = c.get('deps').config;
    const columns = parseShapeColumns(tracked, query.columns);
    if (electricUrl) return await proxyShape(c, electricUrl, tracked, columns, organizationId);
    return await serveShape(c, tracked, columns, organizationId, query);
  });
}

async function serveShape(
  c: Context<AppEnv>,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
  query: ShapeQueryValue,
) {
  const offset = parseShapeOffset(query.offset);
  if (!offset) {
    throw new AppError(
      400,
      ERROR_CODE.validationFailed,
      "offset must be -1, now, <lsn>_<position> or a snapshot chunk's electric-offset",
      { issues: [{ path: [ELECTRIC_PARAM.offset], message: 'Invalid offset' }] },
    );
  }
  const shape: ShapeRequest = {
    c,
    tracked,
    columns,
    organizationId,
    query,
    schema: shapeSchemaHeader(tracked, columns),
    canonical: (state) => shapeHandle(tracked, columns, state),
  };
  if (isSubsetRequest(query)) return serveSubset(shape);
  if (offset.kind === 'before-all') return serveSnapshotStart(shape);
  if (offset.kind === 'snapshot-chunk') return serveSnapshotChunk(shape, offset);
  return serveLog(shape, offset);
}

interface ShapeRequest {
  c: Context<AppEnv>;
  tracked: TrackedTable;
  /** The columns each row carries (`columns`; all of them when absent). */
  columns: ShapeColumns;
  organizationId: string;
  query: ShapeQueryValue;
  /** The `electric-schema` header value. */
  schema: string;
  canonical: (state: ShapeLogState) => string;
}

async function serveSubset({ c, tracked, columns, organizationId, query, schema, canonical }: ShapeRequest) {
  const { sql } = c.get('deps');
  const subset = parseSubsetRequest(tracked, query);
  const snapshot = await readSubsetSnapshot(
    sql,
    organizationId,
    tracked,
    columns,
    c.get('deps').config.cdcSlotName,
    subset,
  );
  const handle = canonical(snapshot.state);
  if (query.handle !== undefined && !isHandleOf(query.handle, handle)) {
    return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: handle });
  }
  const metadata = JSON.stringify(subsetMetadata(snapshot));
  const data = messageArray(snapshot.messages);
  return c.body(
    Buffer.concat([Buffer.from(`{"metadata":${metadata},"data":`), data, Buffer.from('}')]),
    200,
    {
      ...JSON_CONTENT,
      [ELECTRIC_HEADER.handle]: query.handle ?? handle,
      [ELECTRIC_HEADER.offset]: activityId(snapshot.position),
      [ELECTRIC_HEADER.schema]: schema,
    },
  );
}

async function serveSnapshotStart(shape: ShapeRequest) {
  const { c, organizationId, query, schema, canonical } = shape;
  const { sql, config } = c.get('deps');
  const start = await readSnapshotStart(sql, organizationId, config.cdcSlotName);
  const handle = isHandleOf(query.handle, canonical(start.state)) ? query.handle : canonical(start.state);
  if (query.log === LOG_MODE.changesOnly) {
    return c.body(`[${JSON.stringify(upToDateMessage(start.position.lsn))}]`, 200, {
      ...JSON_CONTENT,
      [ELECTRIC_HEADER.handle]: handle,
      [ELECTRIC_HEADER.offset]: activityId(start.position),
      [ELECTRIC_HEADER.schema]: schema,
      [ELECTRIC_HEADER.upToDate]: '',
    });
  }
  const held = heldChunk(shape, start.state, start.position, OFFSET_BEFORE_ALL);
  if (held) {
    c.get('deps').metrics.shapeSnapshotChunks.inc({ read: 'cached' });
    return sendChunk(shape, handle, held, start.state);
  }
  const rows = chunkRows(shape, FIRST_CHUNK_ROWS);
  const chunk = await readChunk(shape, null, rows);
  const snapshot = { handle, start: start.position, visibility: chunk.visibility, rows };
  return snapshotChunkResponse(shape, snapshot, chunk, start.state, OFFSET_BEFORE_ALL);
}

async function serveSnapshotChunk(shape: ShapeRequest, offset: SnapshotChunkOffset) {
  const { c, query, canonical } = shape;
  const { sql, config } = c.get('deps');
  const [state, logHead] = await Promise.all([
    readSharedLogState(sql, config.cdcSlotName),
    readLogHead(sql, shape.organizationId),
  ]);
  if (!isHandleOf(query.handle, canonical(state))) {
    return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: canonical(state) });
  }
  if (isPruned(offset.start, state)) {
    return c.json(MUST_REFETCH, 409, {
      [ELECTRIC_HEADER.handle]: renewedHandle(canonical(state), query.handle, state),
    });
  }
  // a chunk of a snapshot that started where one would start now, i.e. nothing logged since
  const current = activityId(offset.start) === activityId(snapshotStartOf(logHead, state));
  const held = current ? heldChunk(shape, state, offset.start, query.offset) : undefined;
  if (held) {
    c.get('deps').metrics.shapeSnapshotChunks.inc({ read: 'cached' });
    return sendChunk(shape, query.handle, held, state);
  }
  const key = readAheadKey(shape, query.handle, query.offset);
  const ahead = await chunkReadsAhead.take(key)?.catch(() => undefined);
  c.get('deps').metrics.shapeSnapshotChunks.inc({ read: ahead ? 'ahead' : 'on_request' });
  const rows = chunkRows(shape, offset.rows);
  const chunk = ahead ?? (await readChunk(shape, offset.after, rows));
  const snapshot = { ...offset, handle: query.handle, rows };
  return snapshotChunkResponse(shape, snapshot, chunk, state, current ? query.offset : null);
}

/**
 * Chunks read ahead of their request: at most 4 held (about 5 MB each at 10,000 rows), 2 of
 * them for one organization, each dropped when not asked for within 10 s. A chunk read early is as good as one read on request:
 * any read after the snapshot's start S is, as the log from S brings every change it lacks.
 */
const chunkReadsAhead = readAhead<SnapshotChunk>({ maxEntries: 4, maxEntriesPerOwner: 2, ttlMs: 10_000 });

/** The organization, shape, column set and chunk size: what a snapshot's bytes depend on besides its log. */
function snapshotKey({ organizationId, tracked, columns, c }: ShapeRequest): string {
  return `${organizationId}|${tracked.entityType}|${columns.key}|${c.get('deps').config.shapeSnapshotChunkRows}`;
}

/** Only a request of the same organization, shape, column set, handle and chunk offset takes a chunk read ahead. */
function readAheadKey(shape: ShapeRequest, handle: string, offset: string) {
  return `${snapshotKey(shape)}|${handle}|${offset}`;
}

/**
 * Each shape's newest snapshot as sent, for the next client while nothing has been logged since
 * it started (snapshot-cache.ts): 100,000 rows are about 53 MB, so an organization's 64 MiB holds
 * one such snapshot or many small ones, its least recently used dropped first; the 128 MiB over
 * every organization keep one organization from taking more than half from the others.
 */
const heldSnapshots = snapshotCache({ maxBytes: 128 * 2 ** 20, maxBytesPerOrganization: 64 * 2 ** 20 });

/**
 * One held snapshot per organization, shape, column set, chunk size and log (a resync or
 * truncation names another): two column sets never share bytes.
 */
function heldSnapshotKey(shape: ShapeRequest, state: ShapeLogState) {
  return `${snapshotKey(shape)}|${shape.canonical(state)}`;
}

/** The chunk held for `offset` of the shape's snapshot started at `start`, where one would start now. */
function heldChunk(shape: ShapeRequest, state: ShapeLogState, start: LogPosition, offset: string) {
  return heldSnapshots.get(heldSnapshotKey(shape, state), activityId(start), offset);
}

/**
 * The first chunk is small and each next one twice the last, up to `shapeSnapshotChunkRows`:
 * the client gets rows to parse within milliseconds, and each chunk is read while the client
 * parses the one before (half its size). An offset's row count never exceeds the configured size.
 */
const FIRST_CHUNK_ROWS = 1_000;

function chunkRows({ c }: ShapeRequest, rows: number | undefined): number {
  const max = c.get('deps').config.shapeSnapshotChunkRows;
  return Math.min(rows ?? max, max);
}

function readChunk(
  { c, organizationId, tracked, columns }: ShapeRequest,
  after: SnapshotCursor | null,
  rows: number,
) {
  return readSnapshotChunk(c.get('deps').sql, organizationId, tracked, columns, after, rows);
}

async function serveLog(
  { c, tracked, columns, organizationId, query, schema, canonical }: ShapeRequest,
  offset: Extract<ShapeOffset, { kind: 'now' | 'log' }>,
) {
  const { sql, config } = c.get('deps');
  const state = await readSharedLogState(sql, config.cdcSlotName);
  // `offset=now` needs no handle: the client learns it from this response
  const handle = offset.kind === 'now' && query.handle === undefined ? canonical(state) : query.handle;
  if (!isHandleOf(handle, canonical(state))) {
    return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: canonical(state) });
  }
  if (offset.kind === 'log' && isPruned(offset, state)) {
    return c.json(MUST_REFETCH, 409, {
      [ELECTRIC_HEADER.handle]: renewedHandle(canonical(state), handle, state),
    });
  }

  let from: LogPosition = offset.kind === 'now' ? await readLogHead(sql, organizationId) : offset;
  const live = query.live === 'true';
  // a live client has the schema of its first answers, as Electric's do: a live answer leaves it
  // out, which spares each of the many answers after one change its parse and 0.5 KB
  const cursor = live ? nextCursor(query.cursor) : undefined;
  const headers = {
    [ELECTRIC_HEADER.handle]: handle,
    ...(cursor === undefined ? { [ELECTRIC_HEADER.schema]: schema } : { [ELECTRIC_HEADER.cursor]: cursor }),
  };
  // what else a live answer's headers depend on besides its page and origin
  const answerKey = `${handle} ${cursor}`;
  if (live && (query.live_sse === 'true' || query.experimental_live_sse === 'true')) {
    return streamShapeSse(c, tracked, columns, organizationId, from, headers);
  }

  const { notifier, metrics } = c.get('deps');
  const waiter = live ? notifier.waiter(organizationId) : undefined;
  if (waiter) metrics.streamClients.inc({ kind: 'shape-poll' });
  const deadline = Date.now() + config.shapeLongPollMs;
  let waited = false;
  try {
    let page = waiter && caughtUpAt(c, tracked, columns, organizationId, from);
    if (page) metrics.shapeLiveFirstReads.inc({ read: 'skipped' });
    else {
      if (waiter) metrics.shapeLiveFirstReads.inc({ read: 'read' });
      page = await readLogPage(sql, organizationId, tracked, columns, from, PAGE, waiter?.lastNotifiedAt);
    }
    const signal = liveSignal(c);
    // a page of entries a narrowed shape does not show (more follow) is answered at once
    while (
      waiter &&
      page?.changes.length === 0 &&
      page.upToDate !== null &&
      Date.now() < deadline &&
      !signal.aborted
    ) {
      waited = true;
      from = page.last;
      const notifiedAt = await waiter.wait(Math.min(RECHECK_MS, deadline - Date.now()), signal);
      page = await readLogPage(sql, organizationId, tracked, columns, from, PAGE, notifiedAt);
    }
    if (!page) {
      const renamed = await readLogState(sql, c.get('deps').config.cdcSlotName);
      return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: canonical(renamed) });
    }
    // woken (or timed out) together with every request waiting at this offset: the answer
    // they share, prepared once, goes straight to the socket, not through a web Response each
    if (waited) return sendStraight(c, sharedLiveAnswer(c, page, headers, answerKey));
    return c.body(page.body, 200, logAnswerHeaders(page, headers, live));
  } finally {
    if (waiter) {
      waiter.close();
      metrics.streamClients.dec({ kind: 'shape-poll' });
    }
  }
}

/**
 * A live request at the offset where its shape's log ended at a read no notified batch has
 * come after since (the next request of a client just answered, typically): the empty page
 * that read would give, so the request waits at once. The waiter is subscribed first, so a
 * batch whose notification is still on its way wakes it.
 */
function caughtUpAt(
  c: Context<AppEnv>,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
  from: LogPosition,
): EncodedLogPage | null {
  const readAt = logEndReadAt(organizationId, tracked, from);
  if (readAt === undefined || c.get('deps').notifier.notifiedSince(organizationId, readAt)) return null;
  return encodeLogPage(tracked, columns, [], from, PAGE);
}

/**
 * A log page's answer headers. Same handle + offset + cursor → same bytes: a cache in front
 * answers identical live requests of one caller once (keyed by the credentials, see `vary`);
 * the body is the one encoding every request waiting at this offset shares.
 */
function logAnswerHeaders(page: EncodedLogPage, headers: Record<string, string>, live: boolean) {
  return {
    ...JSON_CONTENT,
    ...(live ? LIVE_CACHE : {}),
    ...headers,
    [ELECTRIC_HEADER.offset]: activityId(page.last),
    ...(page.upToDate === null ? {} : { [ELECTRIC_HEADER.upToDate]: '' }),
  };
}

/**
 * The live answers of a page, prepared once for each set of CORS headers (one per origin) and
 * each handle and cursor: every request woken at the page's offset takes one of them.
 */
const sharedLiveAnswers = new WeakMap<
  EncodedLogPage,
  Map<AddedHeaders | undefined, Map<string, StraightAnswer>>
>();

function sharedLiveAnswer(
  c: Context<AppEnv>,
  page: EncodedLogPage,
  headers: Record<string, string>,
  key: string,
) {
  const added = c.get('addedHeaders');
  const byOrigin = memoized(sharedLiveAnswers, page, () => new Map());
  const byStream = memoized(byOrigin, added, () => new Map());
  return memoized(byStream, key, () =>
    prepareStraightAnswer(200, logAnswerHeaders(page, headers, true), added, bodyBytes(page)),
  );
}

const encodedBodies = new WeakMap<EncodedLogPage, Buffer>();

/** A page's body as bytes, encoded once for every request it answers. */
function bodyBytes(page: EncodedLogPage): Buffer {
  return memoized(encodedBodies, page, () => Buffer.from(page.body));
}

/**
 * One chunk of a snapshot, encoded, held for the next client of the shape and sent. Not the
 * last: its offset names the next chunk, which the client asks for next (it prefetches). The
 * last: `snapshot-end` with the first chunk's visibility, then up-to-date, and the offset is the
 * log position the snapshot started at, so the log brings every change since.
 */
function snapshotChunkResponse(
  shape: ShapeRequest,
  snapshot: {
    handle: string;
    start: LogPosition;
    visibility: SnapshotChunkOffset['visibility'];
    /** Rows of this chunk at most. */
    rows: number;
  },
  chunk: SnapshotChunk,
  state: ShapeLogState,
  /** The request's offset, to hold the chunk under; null when a change was logged since the snapshot started. */
  holdAs: string | null,
) {
  const encoded = encodeSnapshotChunk(shape, snapshot, chunk);
  if (holdAs !== null) {
    const key = heldSnapshotKey(shape, state);
    heldSnapshots.hold(shape.organizationId, key, activityId(snapshot.start), holdAs, encoded);
  }
  return sendChunk(shape, snapshot.handle, encoded, state);
}

function encodeSnapshotChunk(
  shape: ShapeRequest,
  snapshot: { start: LogPosition; visibility: SnapshotChunkOffset['visibility']; rows: number },
  chunk: SnapshotChunk,
): EncodedChunk {
  if (chunk.next) {
    const rows = chunkRows(shape, 2 * snapshot.rows);
    const next = { after: chunk.next, rows };
    return {
      body: messageArray(chunk.messages),
      offset: snapshotChunkOffset({ start: snapshot.start, visibility: snapshot.visibility, ...next }),
      next,
    };
  }
  const end = [snapshotEndMessage(snapshot.visibility), upToDateMessage(snapshot.start.lsn)];
  return { body: messageArray(chunk.messages, end), offset: activityId(snapshot.start), next: null };
}

/** Sends an encoded chunk; when more follow, starts reading the next one unless it is held already. */
function sendChunk(shape: ShapeRequest, handle: string, encoded: EncodedChunk, state: ShapeLogState) {
  const { c, schema } = shape;
  const headers = {
    ...JSON_CONTENT,
    [ELECTRIC_HEADER.handle]: handle,
    [ELECTRIC_HEADER.schema]: schema,
    [ELECTRIC_HEADER.offset]: encoded.offset,
  };
  const { next } = encoded;
  if (!next) return c.body(encoded.body, 200, { ...headers, [ELECTRIC_HEADER.upToDate]: '' });
  if (!heldSnapshots.has(heldSnapshotKey(shape, state), encoded.offset)) {
    chunkReadsAhead.start(shape.organizationId, readAheadKey(shape, handle, encoded.offset), () =>
      readChunk(shape, next.after, next.rows),
    );
  }
  return c.body(encoded.body, 200, headers);
}

function streamShapeSse(
  c: Context<AppEnv>,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
  from: LogPosition,
  headers: Record<string, string>,
) {
  const deps = c.get('deps');
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  c.header(ELECTRIC_HEADER.offset, activityId(from));
  const keepAlive = { everyMs: SSE_KEEP_ALIVE_MS, comment: 'keep-alive' };
  return streamLiveSse(c, { organizationId, kind: 'shape-sse', keepAlive }, async (live) => {
    let position = from;
    let notifiedAt: number | undefined = live.notifiedBeforeOpen;
    while (live.open) {
      const page = await readLogPage(deps.sql, organizationId, tracked, columns, position, PAGE, notifiedAt);
      // a truncation renamed the log: end the stream, the reconnect gets 409 must-refetch
      if (!page) return;
      for (const change of page.changes) await live.send({ data: change });
      position = page.last;
      if (page.upToDate === null) continue;
      if (page.changes.length > 0) await live.send({ data: page.upToDate });
      notifiedAt = await live.idle(RECHECK_MS);
    }
  });
}

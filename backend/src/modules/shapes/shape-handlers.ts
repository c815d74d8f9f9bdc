/**
 * Live shapes of every tracked entity in the Electric HTTP protocol, served from the activity log.
 *
 *   offset=-1 ─► snapshot (live rows) + up-to-date, electric-offset = log position of the snapshot
 *   offset=O, handle=H ─┬─ H is not this log's handle (unknown, or CDC resynced) ─► 409 must-refetch
 *                       ├─ O before the retention watermark ──► 409 must-refetch, renewed handle
 *                       ├─ live absent ─► changes after O (≤ PAGE), up-to-date when caught up
 *                       ├─ live=true ───► changes after O, or wait for the CDC worker's NOTIFY
 *                       │                 (≤ LONG_POLL_MS), then up-to-date with a new cursor
 *                       └─ live_sse ────► one SSE response: batches, each closed by up-to-date
 *   a TRUNCATE in the log (it renames the log) ─► 409 must-refetch, new handle; SSE: stream ends
 *
 * The caller's organization and the entity type decide the rows; client-sent `table`, `where`,
 * `columns` and `params` are ignored (or, in proxy mode, replaced by server-side values).
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { stream, streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { currentOrganization, requireMember } from '../../core/guards.ts';
import { type LiveKind, liveSignal, liveStream } from '../../core/live-stream.ts';
import { bearerSecurity, errorResponses, OrgParam } from '../../core/openapi.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import type { TrackedEntityDefinition } from '../../core/tracked/tracked-entity.ts';
import type { TrackedTable } from '../../db/tracked-tables.ts';
import { activityId } from '../activities/activity-operations.ts';
import { ELECTRIC_HEADER, ELECTRIC_PARAM } from './electric-protocol.ts';
import {
  changeMessage,
  MUST_REFETCH,
  nextCursor,
  onlyChanges,
  parseShapeOffset,
  shapeColumns,
  shapeSchema,
  upToDateMessage,
} from './shape-messages.ts';
import {
  isHandleOf,
  isPruned,
  type LogPosition,
  readLog,
  readLogHead,
  readLogState,
  readSnapshotStart,
  renewedHandle,
  type ShapeLogState,
  shapeHandle,
  streamSnapshotMessages,
} from './shape-operations.ts';
import { proxyShape } from './shape-proxy.ts';

const PAGE = 1_000;
const RECHECK_MS = 2_000;
const SSE_KEEP_ALIVE_MS = 20_000;

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
  })
  .loose();

type ShapeQueryValue = z.infer<typeof ShapeQuery>;

/** Live requests hold their access while they wait or stream (live-stream.ts). */
function shapeStreamKind(c: Context<AppEnv>): LiveKind {
  if (c.req.query('live') !== 'true') return null;
  const sse = c.req.query('live_sse') === 'true' || c.req.query('experimental_live_sse') === 'true';
  return sse ? 'sse' : 'poll';
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
    c.header('cache-control', 'private, no-store');
    c.header('vary', 'authorization, cookie');
    const { electricUrl } = c.var.deps.config;
    if (electricUrl) return (await proxyShape(c, electricUrl, tracked, organizationId)) as never;
    return (await serveShape(c, tracked, organizationId, query)) as never;
  });
}

async function serveShape(
  c: Context<AppEnv>,
  tracked: TrackedTable,
  organizationId: string,
  query: ShapeQueryValue,
) {
  const { sql } = c.var.deps;
  const offset = parseShapeOffset(query.offset);
  if (!offset) {
    throw new AppError(400, ERROR_CODE.validationFailed, 'offset must be -1, now, or <lsn>_<position>', {
      issues: [{ path: [ELECTRIC_PARAM.offset], message: 'Invalid offset' }],
    });
  }
  const schema = JSON.stringify(shapeSchema(tracked));

  const canonical = (state: ShapeLogState) => shapeHandle(tracked, state);
  if (offset.kind === 'before-all') {
    const start = await readSnapshotStart(sql, organizationId, c.var.deps.config.cdcSlotName);
    c.header(
      ELECTRIC_HEADER.handle,
      isHandleOf(query.handle, canonical(start.state)) ? query.handle : canonical(start.state),
    );
    c.header(ELECTRIC_HEADER.offset, activityId(start.position));
    c.header(ELECTRIC_HEADER.schema, schema);
    c.header('content-type', 'application/json');
    // streamed as PostgreSQL produces the rows: a large shape is never one string in memory
    return stream(c, async (out) => {
      let separator = '[';
      await streamSnapshotMessages(sql, organizationId, tracked, async (messages) => {
        await out.write(separator + messages.join(','));
        separator = ',';
      });
      await out.write(`${separator}${JSON.stringify(upToDateMessage(start.position.lsn))}]`);
    });
  }

  const state = await readLogState(sql, c.var.deps.config.cdcSlotName);
  const handle = query.handle;
  if (!isHandleOf(handle, canonical(state))) {
    return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: canonical(state) });
  }
  if (offset.kind === 'log' && isPruned(offset, state)) {
    return c.json(MUST_REFETCH, 409, {
      [ELECTRIC_HEADER.handle]: renewedHandle(canonical(state), handle, state),
    });
  }

  const from: LogPosition = offset.kind === 'now' ? await readLogHead(sql, organizationId) : offset;
  const live = query.live === 'true';
  const headers = {
    [ELECTRIC_HEADER.handle]: handle,
    [ELECTRIC_HEADER.schema]: schema,
    ...(live ? { [ELECTRIC_HEADER.cursor]: nextCursor(query.cursor) } : {}),
  };
  if (live && (query.live_sse === 'true' || query.experimental_live_sse === 'true')) {
    return streamShapeSse(c, tracked, organizationId, from, headers);
  }

  const columns = shapeColumns(tracked);
  const waiter = live ? c.var.deps.notifier.waiter(organizationId) : undefined;
  const deadline = Date.now() + c.var.deps.config.shapeLongPollMs;
  try {
    let entries = await readLog(sql, organizationId, tracked, from, PAGE);
    const signal = liveSignal(c);
    while (waiter && entries.length === 0 && Date.now() < deadline && !signal.aborted) {
      await waiter.wait(Math.min(RECHECK_MS, deadline - Date.now()), signal);
      entries = await readLog(sql, organizationId, tracked, from, PAGE);
    }
    if (!onlyChanges(entries)) {
      const renamed = await readLogState(sql, c.var.deps.config.cdcSlotName);
      return c.json(MUST_REFETCH, 409, { [ELECTRIC_HEADER.handle]: canonical(renamed) });
    }
    const last = entries.at(-1) ?? from;
    const messages: unknown[] = entries.map((entry) => changeMessage(tracked, columns, entry));
    if (entries.length < PAGE) messages.push(upToDateMessage(last.lsn));
    return c.json(messages, 200, {
      ...headers,
      [ELECTRIC_HEADER.offset]: activityId(last),
    });
  } finally {
    waiter?.close();
  }
}

function streamShapeSse(
  c: Context<AppEnv>,
  tracked: TrackedTable,
  organizationId: string,
  from: LogPosition,
  headers: Record<string, string>,
) {
  const { deps } = c.var;
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  c.header(ELECTRIC_HEADER.offset, activityId(from));
  c.header('X-Accel-Buffering', 'no');
  const columns = shapeColumns(tracked);
  deps.metrics.streamClients.inc({ kind: 'shape-sse' });
  return streamSSE(c, async (stream) => {
    const waiter = deps.notifier.waiter(organizationId);
    const aborted = new AbortController();
    stream.onAbort(() => aborted.abort());
    let position = from;
    let lastWrite = Date.now();
    try {
      while (!aborted.signal.aborted) {
        const entries = await readLog(deps.sql, organizationId, tracked, position, PAGE);
        // a truncation renamed the log: end the stream, the reconnect gets 409 must-refetch
        if (!onlyChanges(entries)) return;
        for (const entry of entries) {
          await stream.writeSSE({ data: JSON.stringify(changeMessage(tracked, columns, entry)) });
          position = entry;
        }
        if (entries.length === PAGE) continue;
        if (entries.length > 0) {
          await stream.writeSSE({ data: JSON.stringify(upToDateMessage(position.lsn)) });
          lastWrite = Date.now();
        } else if (Date.now() - lastWrite >= SSE_KEEP_ALIVE_MS) {
          await stream.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
        await waiter.wait(RECHECK_MS, aborted.signal);
      }
    } finally {
      waiter.close();
      deps.metrics.streamClients.dec({ kind: 'shape-sse' });
    }
  });
}

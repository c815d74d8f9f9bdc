/**
 * Proxy mode (ELECTRIC_URL set): the caller is authorized here, then only the protocol
 * parameters go on to the Electric service, with `table`, `where` and its parameter decided by
 * the server, so a client can never widen its shape. A `columns` narrowing goes on as this
 * server parsed it (the entity's own columns, primary key included; anything else was a 400
 * here), written anew, so Electric gets exactly that set or none.
 */

import type { TrackedTable } from '@sync/db/tracked-tables';
import type { Context } from 'hono';
import type { AppEnv } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { ELECTRIC_PARAM, PROTOCOL_PARAMS } from './electric-protocol.ts';
import { columnsParam, type ShapeColumns } from './shape-columns.ts';

const LIVE_ROWS_OF_ORGANIZATION = 'organization_id = $1 AND deleted_at IS NULL';

/** The upstream shape URL for this request: protocol params from the client, the rest ours. */
export function upstreamShapeUrl(
  electricUrl: string,
  requestUrl: string,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
  secret?: string,
): URL {
  const upstream = new URL(electricUrl);
  if (upstream.pathname === '/' || upstream.pathname === '') upstream.pathname = '/v1/shape';
  const incoming = new URL(requestUrl).searchParams;
  for (const name of PROTOCOL_PARAMS) {
    const value = incoming.get(name);
    if (value !== null) upstream.searchParams.set(name, value);
  }
  upstream.searchParams.set(ELECTRIC_PARAM.table, tracked.tableName);
  upstream.searchParams.set(ELECTRIC_PARAM.where, LIVE_ROWS_OF_ORGANIZATION);
  upstream.searchParams.set(`${ELECTRIC_PARAM.params}[1]`, organizationId);
  if (columns.digest !== null) upstream.searchParams.set(ELECTRIC_PARAM.columns, columnsParam(columns));
  if (secret) upstream.searchParams.set(ELECTRIC_PARAM.secret, secret);
  return upstream;
}

export async function proxyShape(
  c: Context<AppEnv>,
  electricUrl: string,
  tracked: TrackedTable,
  columns: ShapeColumns,
  organizationId: string,
) {
  const url = upstreamShapeUrl(
    electricUrl,
    c.req.url,
    tracked,
    columns,
    organizationId,
    c.get('deps').config.electricSecret,
  );
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { accept: c.req.header('accept') ?? 'application/json' },
      signal: c.req.raw.signal,
    });
  } catch {
    throw new AppError(503, ERROR_CODE.serviceUnavailable, 'The Electric sync service is unreachable');
  }
  // fetch has decompressed the body: the upstream's encoding and length no longer describe it
  const headers = new Headers(response.headers);
  headers.delete('content-encoding');
  headers.delete('content-length');
  headers.delete('transfer-encoding');
  headers.set('cache-control', 'private, no-store');
  headers.set('vary', 'authorization, cookie');
  return new Response(response.body, { status: response.status, headers });
}

/**
 * Words of the Electric HTTP shape protocol, declared once (see docs/ELECTRIC-PROTOCOL.md; the
 * official client's `constants.ts` is the judge).
 */
export const ELECTRIC_HEADER = {
  handle: 'electric-handle',
  offset: 'electric-offset',
  schema: 'electric-schema',
  cursor: 'electric-cursor',
  /** Present when the response ends with up-to-date: the client does not prefetch a next chunk. */
  upToDate: 'electric-up-to-date',
} as const;

export const ELECTRIC_PARAM = {
  offset: 'offset',
  handle: 'handle',
  live: 'live',
  cursor: 'cursor',
  liveSse: 'live_sse',
  experimentalLiveSse: 'experimental_live_sse',
  table: 'table',
  where: 'where',
  columns: 'columns',
  params: 'params',
  secret: 'secret',
  log: 'log',
} as const;

/** `log=changes_only`: no snapshot rows, only changes after the position the stream starts at. */
export const LOG_MODE = { full: 'full', changesOnly: 'changes_only' } as const;

/** A request with any of these asks for a subset snapshot (`fetchSnapshot()`), not the log. */
export const SUBSET_PARAM = {
  where: 'subset__where',
  params: 'subset__params',
  limit: 'subset__limit',
  offset: 'subset__offset',
  orderBy: 'subset__order_by',
} as const;

/**
 * Query parameters a proxy forwards to a real Electric: the official client's
 * `ELECTRIC_PROTOCOL_QUERY_PARAMS`, of the pinned and the latest version alike (a test holds
 * this list to theirs). The `_expr` forms are the client's structured subset, which only a
 * real Electric reads.
 */
export const PROTOCOL_PARAMS = [
  'live',
  'live_sse',
  'experimental_live_sse',
  'handle',
  'offset',
  'cursor',
  'expired_handle',
  'log',
  'cache-buster',
  ...Object.values(SUBSET_PARAM),
  'subset__where_expr',
  'subset__order_by_expr',
] as const;

/** Offsets: before the snapshot, and "from now on, no snapshot". */
export const OFFSET_BEFORE_ALL = '-1';
export const OFFSET_NOW = 'now';

export const CONTROL = {
  upToDate: 'up-to-date',
  mustRefetch: 'must-refetch',
  snapshotEnd: 'snapshot-end',
} as const;

/**
 * Electric's caching of live long-poll responses. Every other shape response is
 * `private, no-store`: a snapshot is not stable for a handle here (it is re-read each time).
 */
export const LIVE_CACHE_CONTROL = 'public, max-age=5, stale-while-revalidate=5';

/** Live cursors advance in intervals like Electric's, so clients of one interval share cache keys. */
export const LIVE_CURSOR_INTERVAL_MS = 20_000;

export const EXPOSED_HEADERS = Object.values(ELECTRIC_HEADER);

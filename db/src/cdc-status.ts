/**
 * The worker's health as the API reports it (`/api/health`, `/api/metrics`), read from the
 * server, so the API needs no channel to the worker:
 *   missing    no slot (dropped, or migrations never ran: the next start resyncs)
 *   lost       the slot was invalidated (its WAL is gone: the next start resyncs)
 *   starting   the slot exists (the migration step creates it, so the WAL is kept) and no
 *              worker has streamed from it yet
 *   streaming  a walsender is attached to the slot
 *   stopped    a worker streamed and is gone (lag grows until one returns)
 * lagBytes is the WAL the slot holds back: pg_current_wal_lsn() − confirmed_flush_lsn.
 *
 * What `/api/health` says (`cdcHealthWord`), in four words:
 *   starting   → starting
 *   streaming  → streaming, or lagging when lagBytes > the lagging threshold
 *   stopped, missing, lost, or the database unreadable → down
 */
import type postgres from 'postgres';
import { DEFAULT_SLOT_NAME } from './constants.ts';

export const CDC_STATUS_NAMES = ['starting', 'streaming', 'stopped', 'missing', 'lost'] as const;
export type CdcStatusName = (typeof CDC_STATUS_NAMES)[number];

/** The CDC status words of the API's contract (`/api/health` → `cdc.status`). */
export const CDC_HEALTH_WORDS = ['starting', 'streaming', 'lagging', 'down'] as const;
export type CdcHealthWord = (typeof CDC_HEALTH_WORDS)[number];

/**
 * WAL a streaming worker may hold back before it counts as lagging: 16 MiB, one WAL segment.
 * The worker catches that up in well under a second; a lag that stays above it means the
 * worker cannot keep up (or cannot write).
 */
export const CDC_LAGGING_BYTES = 16 * 1024 * 1024;

/** The contract's word for a status read from the server (null: the database could not be read). */
export function cdcHealthWord(
  status: CdcStatus | null,
  laggingBytes: number = CDC_LAGGING_BYTES,
): CdcHealthWord {
  switch (status?.status) {
    case 'starting':
      return 'starting';
    case 'streaming':
      return status.lagBytes > laggingBytes ? 'lagging' : 'streaming';
    default:
      return 'down';
  }
}

export interface CdcStatus {
  status: CdcStatusName;
  lagBytes: number;
  /** Commit time of the last change the worker persisted (ISO 8601), null before the first. */
  lastEventAt: string | null;
  /** Increases on every resync; shape handles include it. */
  epoch: number;
  /** Peak RSS of the worker process that wrote the last batch (null before the first). */
  workerPeakRssBytes: number | null;
}

export async function readCdcStatus(
  sql: postgres.Sql,
  slotName: string = DEFAULT_SLOT_NAME,
): Promise<CdcStatus> {
  const [row] = await sql<
    {
      slot_exists: boolean;
      active: boolean | null;
      lost: boolean | null;
      lag: string | null;
      last_event_at: string | null;
      epoch: number | null;
      streamed: boolean | null;
      worker_peak_rss_bytes: string | null;
    }[]
  >`
    select s.slot_name is not null as slot_exists,
      s.active,
      coalesce(s.wal_status = 'lost', false) or (to_jsonb(s) ->> 'invalidation_reason') is not null as lost,
      greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::int8::text as lag,
      to_json(c.last_event_at) #>> '{}' as last_event_at,
      c.epoch,
      c.streamed_at is not null as streamed,
      c.worker_peak_rss_bytes::text as worker_peak_rss_bytes
    from (select 1) as one
    left join pg_replication_slots s on s.slot_name = ${slotName}
    left join cdc_state c on c.slot_name = ${slotName}`;
  const status: CdcStatusName = !row?.slot_exists
    ? 'missing'
    : row.lost
      ? 'lost'
      : row.active
        ? 'streaming'
        : row.streamed
          ? 'stopped'
          : 'starting';
  return {
    status,
    lagBytes: status === 'missing' ? 0 : Number(row?.lag ?? 0),
    lastEventAt: row?.last_event_at ?? null,
    epoch: row?.epoch ?? 1,
    workerPeakRssBytes: row?.worker_peak_rss_bytes ? Number(row.worker_peak_rss_bytes) : null,
  };
}

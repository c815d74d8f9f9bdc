import type { AppDeps } from '../../core/app-env.ts';

const CDC_SLOT = process.env.CDC_SLOT_NAME ?? 'sync_activities';

export interface CdcHealth {
  status: string;
  lagBytes: number;
  lastEventAt: string | null;
}

/** Database reachability and the CDC worker's replication slot, read in one query. */
export async function readHealth(deps: AppDeps): Promise<{ db: 'ok' | 'down'; cdc: CdcHealth }> {
  try {
    const query = deps.sql<
      { active: boolean | null; lag: string | null; wal: string | null; last: Date | null }[]
    >`
      select s.active, s.wal_status as wal,
             (pg_current_wal_lsn() - s.confirmed_flush_lsn)::text as lag,
             (select last_event_at from cdc_state where slot_name = ${CDC_SLOT}) as last
      from (select 1) one left join pg_replication_slots s on s.slot_name = ${CDC_SLOT}`;
    const [row] = await withTimeout(query, 2000);
    const status =
      !row || row.active === null
        ? 'missing'
        : row.wal === 'lost'
          ? 'lost'
          : row.active
            ? 'streaming'
            : 'stopped';
    const cdc = { status, lagBytes: Number(row?.lag ?? 0), lastEventAt: row?.last?.toISOString() ?? null };
    deps.metrics.cdcLagBytes.set(cdc.lagBytes);
    deps.metrics.cdcUp.set(status === 'streaming' ? 1 : 0);
    return { db: 'ok', cdc };
  } catch {
    return { db: 'down', cdc: { status: 'unknown', lagBytes: 0, lastEventAt: null } };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

import { type CdcHealthWord, type CdcStatusName, cdcHealthWord, readCdcStatus } from '@sync/db/cdc-status';
import { withTimeout } from '@sync/db/timers';
import type { AppDeps } from '../../core/app-env.ts';

export interface CdcHealth {
  status: CdcHealthWord;
  /** The worker's own state behind that word; null when the database could not be read. */
  detail: CdcStatusName | null;
  lagBytes: number;
  lastEventAt: string | null;
}

/** Database reachability and the CDC worker's replication slot (read from the server). */
export async function readHealth(deps: AppDeps): Promise<{ db: 'ok' | 'down'; cdc: CdcHealth }> {
  try {
    const cdc = await withTimeout(readCdcStatus(deps.sql, deps.config.cdcSlotName), 2000);
    const { status, lagBytes, lastEventAt, workerPeakRssBytes } = cdc;
    deps.metrics.cdcLagBytes.set(lagBytes);
    if (workerPeakRssBytes !== null) deps.metrics.cdcWorkerPeakRssBytes.set(workerPeakRssBytes);
    deps.metrics.cdcUp.set(status === 'streaming' ? 1 : 0);
    return {
      db: 'ok',
      cdc: { status: cdcHealthWord(cdc, deps.config.cdcLaggingBytes), detail: status, lagBytes, lastEventAt },
    };
  } catch {
    return { db: 'down', cdc: { status: cdcHealthWord(null), detail: null, lagBytes: 0, lastEventAt: null } };
  }
}

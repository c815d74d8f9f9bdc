import { readCdcStatus } from '@sync/cdc/status';
import type { AppDeps } from '../../core/app-env.ts';
import { withTimeout } from '../../core/timeout.ts';

export interface CdcHealth {
  status: string;
  lagBytes: number;
  lastEventAt: string | null;
}

/** Database reachability and the CDC worker's replication slot (read from the server). */
export async function readHealth(deps: AppDeps): Promise<{ db: 'ok' | 'down'; cdc: CdcHealth }> {
  try {
    const { status, lagBytes, lastEventAt, workerPeakRssBytes } = await withTimeout(
      readCdcStatus(deps.sql, deps.config.cdcSlotName),
      2000,
    );
    deps.metrics.cdcLagBytes.set(lagBytes);
    if (workerPeakRssBytes !== null) deps.metrics.cdcWorkerPeakRssBytes.set(workerPeakRssBytes);
    deps.metrics.cdcUp.set(status === 'streaming' ? 1 : 0);
    return { db: 'ok', cdc: { status, lagBytes, lastEventAt } };
  } catch {
    return { db: 'down', cdc: { status: 'unknown', lagBytes: 0, lastEventAt: null } };
  }
}

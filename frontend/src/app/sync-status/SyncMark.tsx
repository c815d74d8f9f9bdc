import type { TransactionStatus } from '../../lib/sync/index.ts';

const DESCRIPTION: Record<TransactionStatus, string> = {
  pending: 'Saved on this device, waiting to be sent',
  sent: 'The server has it; waiting for it to come back on the live stream',
  confirmed: 'Confirmed by the live stream',
  failed: 'The server rejected this change',
  conflict: 'Someone else changed this first: choose a version',
};

/** The sync status of one item: its accessible name is exactly the status word. */
export function SyncMark({ status }: { status: TransactionStatus }) {
  return (
    <span
      role="img"
      aria-label={status}
      title={DESCRIPTION[status]}
      data-sync-status={status}
      className={`sync-mark sync-${status}`}
    />
  );
}

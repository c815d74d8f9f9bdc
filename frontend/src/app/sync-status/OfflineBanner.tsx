import { useOnline, useQueuedCount, useSyncSelector } from '../../lib/sync/index.ts';

const changes = (count: number) => `${count} ${count === 1 ? 'change' : 'changes'} queued`;

/**
 * `Offline · 3 changes queued`; while online it shows only the queue being sent, then nothing.
 * Nothing either until the outbox has been read, so a reload never counts 0 first.
 */
export function OfflineBanner() {
  const ready = useSyncSelector((snapshot) => snapshot.ready);
  const online = useOnline();
  const queued = useQueuedCount();
  if (!ready || (online && queued === 0)) return null;
  return (
    <div role="status" className={`connection-banner ${online ? 'sending' : 'offline'}`}>
      {online ? `Sending · ${changes(queued)}` : `Offline · ${changes(queued)}`}
    </div>
  );
}

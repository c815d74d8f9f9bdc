import { useSyncSnapshot } from '../../lib/sync/index.ts';

const changes = (count: number) => `${count} ${count === 1 ? 'change' : 'changes'} queued`;

/** `Offline · 3 changes queued`; while online it shows only the queue being sent, then nothing. */
export function OfflineBanner() {
  const { online, queued } = useSyncSnapshot();
  if (online && queued === 0) return null;
  return (
    <div role="status" className={`connection-banner ${online ? 'sending' : 'offline'}`}>
      {online ? `Sending · ${changes(queued)}` : `Offline · ${changes(queued)}`}
    </div>
  );
}

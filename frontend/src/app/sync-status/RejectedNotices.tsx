import { type FailedWrite, useFailedWrites, useTransactionActions } from '../../lib/sync/index.ts';

/** What a person calls the item: its title or file name, from the change or the entity id. */
export function itemLabel(values: Record<string, unknown> | null | undefined, fallback: string): string {
  const label = values?.title ?? values?.filename;
  return typeof label === 'string' && label.trim() !== '' ? label : fallback;
}

const VERB: Record<string, string> = { create: 'save', update: 'save', delete: 'delete', undo: 'undo' };

export function rejectionText(failed: FailedWrite): string {
  const { entry } = failed;
  const label = itemLabel(entry.payload, itemLabel(entry.serverVersion, entry.entityId));
  const reason = failed.cascadedFrom ? 'an earlier change it depended on was rejected' : failed.reason;
  return `Could not ${VERB[entry.action] ?? 'save'} "${label}": ${reason}`;
}

/** One `role=alert` per rejected write; the change is already rolled back when it shows. */
export function RejectedNotices() {
  const failed = useFailedWrites();
  const { dismiss } = useTransactionActions();
  if (failed.length === 0) return null;
  return (
    <div className="notices">
      {failed.map((write) => (
        <div key={write.entry.txId} role="alert" className="notice notice-error">
          <span>{rejectionText(write)}</span>
          <button type="button" onClick={() => dismiss(write.entry.txId)}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}

import {
  attachments,
  type FailedWrite,
  pages,
  useFailedWrites,
  useTransactionActions,
} from '../../lib/sync/index.ts';

/** What a person calls the item: its title or file name. */
export function itemLabel(values: Record<string, unknown> | null | undefined, fallback: string): string {
  const label = values?.title ?? values?.filename;
  return typeof label === 'string' && label.trim() !== '' ? label : fallback;
}

const VERB: Record<string, string> = { create: 'save', update: 'save', delete: 'delete', undo: 'undo' };

/** "Invalid json (title: Too big: …)" → "title: Too big: …": the part a person can act on. */
export function reasonOf(failed: FailedWrite): string {
  if (failed.cascadedFrom) return 'an earlier change it depended on was rejected';
  return failed.reason.match(/^Invalid \w+ \((.+)\)$/)?.[1] ?? failed.reason;
}

/**
 * `Could not save "Plan": title: Too big…`. The item is named as the person knows it: its
 * current (rolled back) title, else the title the change tried to give it.
 */
export function rejectionText(failed: FailedWrite, currentLabel: string | undefined): string {
  const { entry } = failed;
  const label = currentLabel ?? itemLabel(entry.payload, itemLabel(entry.serverVersion, entry.entityId));
  return `Could not ${VERB[entry.action] ?? 'save'} "${label}": ${reasonOf(failed)}`;
}

/** One `role=alert` per rejected write; the change is already rolled back when it shows. */
export function RejectedNotices() {
  const failed = useFailedWrites();
  const { dismiss } = useTransactionActions();
  const known = [...pages.useItems(), ...attachments.useItems()];
  if (failed.length === 0) return null;
  const currentLabel = (id: string) => {
    const item = known.find((candidate) => candidate.id === id);
    return item ? itemLabel(item.value, id) : undefined;
  };
  return (
    <div className="notices">
      {failed.map((write) => (
        <div key={write.entry.txId} role="alert" className="notice notice-error">
          <span>{rejectionText(write, currentLabel(write.entry.entityId))}</span>
          <button type="button" onClick={() => dismiss(write.entry.txId)}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}

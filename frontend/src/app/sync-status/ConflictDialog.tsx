/**
 * The `Conflict` dialog: the person's version and the server's side by side. It opens for the
 * oldest unresolved conflict; Escape sets it aside (the item keeps its `conflict` mark and the
 * `Resolve` button brings it back).
 */
import { useEffect, useRef, useState } from 'react';
import { type Conflict, useConflicts, useTransactionActions } from '../../lib/sync/index.ts';
import { itemLabel } from './RejectedNotices.tsx';

const SHOWN_FIELDS = ['title', 'content', 'filename', 'url'];

function VersionView({ label, values }: { label: string; values: Record<string, unknown> | null }) {
  return (
    <section aria-label={label} className="version">
      <h3>{label}</h3>
      {values === null ? (
        <p className="muted">Deleted</p>
      ) : (
        <dl>
          {SHOWN_FIELDS.filter((field) => field in values).map((field) => (
            <div key={field}>
              <dt>{field}</dt>
              <dd>{String(values[field] ?? '')}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}

export function ConflictDialog() {
  const conflicts = useConflicts();
  const { keepMine, takeTheirs } = useTransactionActions();
  const [setAside, setSetAside] = useState<ReadonlySet<string>>(new Set());
  const dialog = useRef<HTMLDialogElement>(null);
  const current: Conflict | undefined = conflicts.find((conflict) => !setAside.has(conflict.entry.txId));

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (current && !element.open) element.showModal();
    if (!current && element.open) element.close();
  }, [current]);

  /** Why the last choice could not be applied (Keep mine of a change that has nothing to keep). */
  const [refusal, setRefusal] = useState<{ txId: string; message: string } | null>(null);

  const resolve = async (action: (txId: string) => Promise<unknown>) => {
    if (!current) return;
    const { txId } = current.entry;
    try {
      await action(txId);
      setRefusal(null);
    } catch (error) {
      setRefusal({ txId, message: error instanceof Error ? error.message : String(error) });
    }
  };

  return (
    <>
      {conflicts.length > 0 && !current && (
        <div className="notice notice-warning">
          <span>
            {conflicts.length === 1 ? 'One change is' : `${conflicts.length} changes are`} in conflict.
          </span>
          <button type="button" onClick={() => setSetAside(new Set())}>
            Resolve
          </button>
        </div>
      )}
      <dialog
        ref={dialog}
        aria-labelledby="conflict-title"
        className="conflict-dialog"
        onCancel={() => {
          if (current) setSetAside((previous) => new Set([...previous, current.entry.txId]));
        }}
      >
        <h2 id="conflict-title">Conflict</h2>
        {current && (
          <>
            <p>
              “{itemLabel(current.mine, itemLabel(current.theirs, current.entry.entityId))}” was changed on
              another device before your change reached the server. Which version should stay?
            </p>
            {refusal?.txId === current.entry.txId && (
              <p role="alert">Cannot keep your version: {refusal.message}.</p>
            )}
            <div className="versions">
              <VersionView label="Your version" values={current.mine} />
              <VersionView label="Their version" values={current.theirs} />
            </div>
            <div className="row end">
              <button type="button" onClick={() => resolve(takeTheirs)}>
                Take theirs
              </button>
              <button type="button" className="primary" onClick={() => resolve(keepMine)}>
                Keep mine
              </button>
            </div>
          </>
        )}
      </dialog>
    </>
  );
}

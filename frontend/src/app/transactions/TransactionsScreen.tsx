/**
 * The transaction debug view: this device's transactions (from the outbox, with their live
 * status) and other devices' (from the activity feed, applied), newest first. A row expands to
 * the activities the CDC worker recorded for it.
 */
import { useQuery } from '@tanstack/react-query';
import { Fragment, useState } from 'react';
import { listActivities } from '../../api.gen/index.ts';
import {
  type Activity,
  attachments,
  pages,
  type TransactionStatus,
  useActivities,
  useOutbox,
  useSyncClient,
  useTransactionActions,
} from '../../lib/sync/index.ts';
import { failure } from '../api-errors.ts';
import { itemLabel } from '../sync-status/RejectedNotices.tsx';
import { SyncMark } from '../sync-status/SyncMark.tsx';

interface TransactionRow {
  txId: string;
  entity: string;
  action: string;
  status: TransactionStatus;
  createdAt: number;
  mine: boolean;
  error?: string;
}

/** "page “Plan”" for a page this device knows, else "page V1StGXR8_Z5jdHi6". */
function useEntityLabel(): (entityType: string, id: string) => string {
  const known = [...pages.useItems(), ...attachments.useItems()];
  return (entityType, id) => {
    const item = known.find((candidate) => candidate.id === id);
    return item ? `${entityType} “${itemLabel(item.value, id)}”` : `${entityType} ${id}`;
  };
}

function useTransactionRows(): TransactionRow[] {
  const outbox = useOutbox();
  const activities = useActivities();
  const entityLabel = useEntityLabel();
  const rows = new Map<string, TransactionRow>();
  for (const entry of outbox) {
    rows.set(entry.txId, {
      txId: entry.txId,
      entity: entityLabel(entry.entityType, entry.entityId),
      action: entry.action,
      status: entry.status,
      createdAt: entry.createdAt,
      mine: true,
      ...(entry.lastError ? { error: entry.lastError.message } : {}),
    });
  }
  for (const activity of activities) {
    if (!activity.transactionId || rows.has(activity.transactionId)) continue;
    rows.set(activity.transactionId, {
      txId: activity.transactionId,
      entity: entityLabel(activity.entityType, activity.entityId),
      action: activity.action,
      status: 'confirmed',
      createdAt: Date.parse(activity.createdAt),
      mine: false,
    });
  }
  return [...rows.values()].sort((a, b) => b.createdAt - a.createdAt);
}

function TransactionActivities({ txId }: { txId: string }) {
  const { organization, api } = useSyncClient();
  const query = useQuery({
    queryKey: ['transaction-activities', organization, txId],
    queryFn: async (): Promise<Activity[]> => {
      const { data, error, response } = await listActivities({
        client: api,
        path: { org: organization },
        query: { transactionId: txId },
      });
      if (!data) return failure(response, error);
      return data.items;
    },
  });
  if (query.isPending) return <p className="muted">Loading activities…</p>;
  if (query.isError) return <p className="muted">Could not load its activities.</p>;
  if (query.data.length === 0) return <p className="muted">No activity recorded yet.</p>;
  return (
    <ul className="transaction-activities">
      {query.data.map((activity) => (
        <li key={activity.id}>
          <code>{activity.type}</code> {activity.entityId} · changed {activity.changedKeys.join(', ') || '—'}{' '}
          · {new Date(activity.createdAt).toLocaleTimeString()}
        </li>
      ))}
    </ul>
  );
}

export function TransactionsScreen() {
  const rows = useTransactionRows();
  const { undo } = useTransactionActions();
  const [expanded, setExpanded] = useState<string | null>(null);
  return (
    <main className="transactions">
      <table aria-labelledby="transactions-title">
        <caption id="transactions-title">Transactions</caption>
        <thead>
          <tr>
            <th scope="col">Transaction</th>
            <th scope="col">Entity</th>
            <th scope="col">Action</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <Fragment key={row.txId}>
              <tr>
                <td>
                  <button
                    type="button"
                    className="link mono"
                    aria-expanded={expanded === row.txId}
                    onClick={() => setExpanded(expanded === row.txId ? null : row.txId)}
                  >
                    {row.txId}
                  </button>
                </td>
                <td>{row.entity}</td>
                <td>{row.action}</td>
                <td>
                  <span className="status-cell">
                    <SyncMark status={row.status} /> {row.status}
                    {row.error && row.status !== 'confirmed' && <span className="muted"> · {row.error}</span>}
                  </span>
                  {row.mine && row.status === 'confirmed' && row.action !== 'undo' && (
                    <button type="button" className="small" onClick={() => undo(row.txId)}>
                      Undo
                    </button>
                  )}
                </td>
                <td>
                  <time dateTime={new Date(row.createdAt).toISOString()}>
                    {new Date(row.createdAt).toLocaleTimeString()}
                  </time>
                </td>
              </tr>
              {expanded === row.txId && (
                <tr className="expansion">
                  <td colSpan={5}>
                    <TransactionActivities txId={row.txId} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <p className="muted">No transactions yet.</p>}
    </main>
  );
}

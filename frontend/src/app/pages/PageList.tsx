import type { Page } from '../../api.gen/index.ts';
import type { SyncedItem } from '../../lib/sync/index.ts';
import { SyncMark } from '../sync-status/SyncMark.tsx';

export function PageList(props: {
  items: SyncedItem<Page>[];
  loading: boolean;
  selectedId: string | null;
  onSelect(id: string): void;
}) {
  if (props.loading) return <p className="muted">Loading pages…</p>;
  if (props.items.length === 0) return <p className="muted">No pages yet. Start with “New page”.</p>;
  return (
    <ul aria-label="Pages" className="page-list">
      {props.items.map((item) => (
        <li key={item.id}>
          <a
            href={`?page=${encodeURIComponent(item.id)}`}
            aria-current={item.id === props.selectedId ? 'page' : undefined}
            onClick={(event) => {
              event.preventDefault();
              props.onSelect(item.id);
            }}
          >
            <span className="page-title">{item.value.title || 'Untitled'}</span>
            <SyncMark status={item.status} />
          </a>
        </li>
      ))}
    </ul>
  );
}

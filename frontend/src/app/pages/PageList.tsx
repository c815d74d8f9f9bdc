import { memo, useCallback, useRef } from 'react';
import type { Page } from '../../api.gen/index.ts';
import type { SyncedItem } from '../../lib/sync/index.ts';
import { SyncMark } from '../sync-status/SyncMark.tsx';

/** One entry of the list; the sync library keeps an unchanged item the same object, so it is not redrawn. */
const PageListItem = memo(function PageListItem(props: {
  item: SyncedItem<Page>;
  selected: boolean;
  onSelect(id: string): void;
}) {
  const { item } = props;
  return (
    <li>
      <a
        href={`?page=${encodeURIComponent(item.id)}`}
        aria-current={props.selected ? 'page' : undefined}
        onClick={(event) => {
          event.preventDefault();
          props.onSelect(item.id);
        }}
      >
        <span className="page-title">{item.value.title || 'Untitled'}</span>
        <SyncMark status={item.status} />
      </a>
    </li>
  );
});

export function PageList(props: {
  items: SyncedItem<Page>[];
  loading: boolean;
  selectedId: string | null;
  onSelect(id: string): void;
}) {
  // one function for every render, so the items' props stay equal
  const onSelectLatest = useRef(props.onSelect);
  onSelectLatest.current = props.onSelect;
  const onSelect = useCallback((id: string) => onSelectLatest.current(id), []);
  if (props.loading) return <p className="muted">Loading pages…</p>;
  if (props.items.length === 0) return <p className="muted">No pages yet. Start with “New page”.</p>;
  return (
    <ul aria-label="Pages" className="page-list">
      {props.items.map((item) => (
        <PageListItem key={item.id} item={item} selected={item.id === props.selectedId} onSelect={onSelect} />
      ))}
    </ul>
  );
}

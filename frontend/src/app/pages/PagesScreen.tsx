import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { useSearchParams } from 'wouter';
import type { Page } from '../../api.gen/index.ts';
import { pages, useSyncClient, useTransactionActions } from '../../lib/sync/index.ts';
import { ActivityFeed } from '../activity/ActivityFeed.tsx';
import { Counts } from '../activity/Counts.tsx';
import { PageEditor } from './PageEditor.tsx';
import { PageList } from './PageList.tsx';

const NEW_PAGE = 'new';

/** The notice after a delete, with `Undo` (a transaction of its own that restores the page). */
function DeletedNotice({ deleted, onClose }: { deleted: { title: string; txId: string }; onClose(): void }) {
  const { undo } = useTransactionActions();
  return (
    <div role="status" className="notice">
      <span>Deleted “{deleted.title}”.</span>
      <button
        type="button"
        onClick={async () => {
          await undo(deleted.txId);
          onClose();
        }}
      >
        Undo
      </button>
      <button type="button" className="link" aria-label="Close notice" onClick={onClose}>
        ✕
      </button>
    </div>
  );
}

/** `/o/{slug}`: the pages list and editor beside the live counts and activity feed. */
export function PagesScreen() {
  const client = useSyncClient();
  const list = useQuery(pages.queryOptions(client));
  const items = list.data ?? [];
  const [search, setSearch] = useSearchParams();
  const selectedId = search.get('page');
  const selected =
    selectedId && selectedId !== NEW_PAGE ? items.find((item) => item.id === selectedId) : undefined;
  const [deleted, setDeleted] = useState<{ title: string; txId: string } | null>(null);
  // every `New page` gets an editor of its own, so a save still being stored in the previous
  // one cannot take over what is typed next
  const [newEditors, setNewEditors] = useState(0);
  const open = (id: string | null) => setSearch(id ? { page: id } : {});

  return (
    <main className="workspace">
      <section className="panel pages-pane" aria-labelledby="pages-title">
        <div className="pane-head">
          <h2 id="pages-title">Pages</h2>
          <button
            type="button"
            className="primary"
            onClick={() => {
              setNewEditors((n) => n + 1);
              open(NEW_PAGE);
            }}
          >
            New page
          </button>
        </div>
        <PageList
          items={items}
          loading={list.isPending}
          selectedId={selectedId}
          onSelect={(id) => open(id)}
        />
      </section>
      <section className="panel editor-pane" aria-label="Editor">
        {deleted && <DeletedNotice deleted={deleted} onClose={() => setDeleted(null)} />}
        {selectedId === NEW_PAGE || selected ? (
          <PageEditor
            key={selected?.id ?? `${NEW_PAGE}-${newEditors}`}
            item={selected}
            onCreated={(id) => open(id)}
            onDeleted={(page: Page, txId) => {
              setDeleted({ title: page.title, txId });
              open(null);
            }}
          />
        ) : (
          <p className="muted empty-editor">
            {list.isPending
              ? 'Loading…'
              : selectedId
                ? 'This page does not exist or was deleted.'
                : 'Pick a page, or create one with “New page”.'}
          </p>
        )}
      </section>
      <div className="side-pane">
        <Counts />
        <ActivityFeed />
      </div>
    </main>
  );
}

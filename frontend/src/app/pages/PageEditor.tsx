/**
 * The editor of one page. It keeps a draft; while the draft is untouched it follows the live
 * value, and `Save` sends only the changed fields against the version the person started from,
 * so two people editing at once get the conflict dialog rather than a silent overwrite.
 */
import { type FormEvent, useEffect, useRef, useState } from 'react';
import type { Page } from '../../api.gen/index.ts';
import { pages, type SyncedItem } from '../../lib/sync/index.ts';
import { SyncMark } from '../sync-status/SyncMark.tsx';
import { Attachments } from './Attachments.tsx';

interface Draft {
  title: string;
  content: string;
  /** `transactions.update ?? insert` of the page when editing began. */
  baseVersion: string | null;
}

const draftOf = (page: Page | undefined): Draft => ({
  title: page?.title ?? '',
  content: page?.content ?? '',
  baseVersion: page ? (page.transactions.update ?? page.transactions.insert) : null,
});

export function PageEditor(props: {
  item: SyncedItem<Page> | undefined;
  onCreated(id: string): void;
  onDeleted(page: Page, txId: string): void;
}) {
  const { item } = props;
  const create = pages.useCreate();
  const update = pages.useUpdate();
  const remove = pages.useDelete();
  const [draft, setDraft] = useState<Draft>(() => draftOf(item?.value));
  const [dirty, setDirty] = useState(false);
  // a new page is shown once stored, unless the person has moved on meanwhile: another
  // editor (this one unmounted) or more typing here
  const mounted = useRef(true);
  const edits = useRef(0);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  // the page changed elsewhere while the draft is untouched (another page remounts the editor)
  useEffect(() => {
    if (!dirty) setDraft(draftOf(item?.value));
  }, [item?.value, dirty]);

  const edit = (field: 'title' | 'content', value: string) => {
    setDraft((previous) => ({ ...previous, [field]: value }));
    setDirty(true);
    edits.current += 1;
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const title = draft.title.trim();
    if (!item) {
      const editsAtSave = edits.current;
      const { id } = await create.mutateAsync({ title, content: draft.content });
      if (!mounted.current || edits.current !== editsAtSave) return;
      setDirty(false);
      props.onCreated(id);
      return;
    }
    const patch: { title?: string; content?: string } = {};
    if (title !== item.value.title) patch.title = title;
    if (draft.content !== item.value.content) patch.content = draft.content;
    setDirty(false);
    if (Object.keys(patch).length === 0) return;
    await update.mutateAsync({ id: item.id, patch, expectedVersion: draft.baseVersion });
  };

  const onDelete = async () => {
    if (!item) return;
    const { txId } = await remove.mutateAsync(item.id);
    props.onDeleted(item.value, txId);
  };

  return (
    <article className="editor" aria-label={item ? `Editing ${item.value.title}` : 'New page'}>
      <form onSubmit={onSubmit} className="stack">
        <div className="editor-head">
          <h2>{item ? 'Edit page' : 'New page'}</h2>
          {item && <SyncMark status={item.status} />}
        </div>
        <label>
          Title
          <input value={draft.title} required onChange={(e) => edit('title', e.target.value)} />
        </label>
        <label>
          Content
          <textarea value={draft.content} rows={10} onChange={(e) => edit('content', e.target.value)} />
        </label>
        <div className="row">
          <button type="submit" className="primary">
            Save
          </button>
          {item && (
            <button type="button" className="danger" onClick={onDelete}>
              Delete
            </button>
          )}
          {dirty && <span className="muted">Unsaved changes</span>}
        </div>
      </form>
      {item && <Attachments pageId={item.id} />}
    </article>
  );
}

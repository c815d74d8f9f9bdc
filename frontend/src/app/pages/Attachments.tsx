import { type FormEvent, useState } from 'react';
import { attachments } from '../../lib/sync/index.ts';
import { SyncMark } from '../sync-status/SyncMark.tsx';

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  svg: 'image/svg+xml',
  pdf: 'application/pdf',
  txt: 'text/plain',
  md: 'text/markdown',
};

export function contentTypeOf(filename: string): string {
  const extension = filename.split('.').pop()?.toLowerCase() ?? '';
  return CONTENT_TYPES[extension] ?? 'application/octet-stream';
}

/** The attachments of one page (links by URL), each with its own sync mark. */
export function Attachments({ pageId }: { pageId: string }) {
  const items = attachments.useItems().filter((item) => item.value.pageId === pageId);
  const create = attachments.useCreate();
  const remove = attachments.useDelete();
  const [filename, setFilename] = useState('');
  const [url, setUrl] = useState('');

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    await create.mutateAsync({
      pageId,
      filename: filename.trim(),
      url,
      contentType: contentTypeOf(filename),
      size: 0,
    });
    setFilename('');
    setUrl('');
  };

  return (
    <section className="attachments" aria-labelledby="attachments-title">
      <h3 id="attachments-title">Attachments</h3>
      <ul aria-label="Attachments">
        {items.map((item) => (
          <li key={item.id}>
            <a href={item.value.url} target="_blank" rel="noreferrer noopener">
              {item.value.filename}
            </a>
            <SyncMark status={item.status} />
            <button
              type="button"
              className="link"
              aria-label={`Remove ${item.value.filename}`}
              onClick={() => remove.mutate(item.id)}
            >
              Remove
            </button>
          </li>
        ))}
      </ul>
      {items.length === 0 && <p className="muted">No attachments.</p>}
      <form onSubmit={onSubmit} className="attachment-form">
        <label>
          File name
          <input value={filename} required onChange={(e) => setFilename(e.target.value)} />
        </label>
        <label>
          URL
          <input type="url" value={url} required onChange={(e) => setUrl(e.target.value)} />
        </label>
        <button type="submit">Add attachment</button>
      </form>
    </section>
  );
}

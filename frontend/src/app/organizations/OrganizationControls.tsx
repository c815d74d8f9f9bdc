import { type FormEvent, useId, useRef, useState } from 'react';
import { useLocation } from 'wouter';
import { describeError } from '../api-errors.ts';
import { slugFromName, useCreateOrganization, useOrganizations } from './organizations.ts';

/** The `Organization` picker: a native select, so keyboard and screen readers work as usual. */
export function OrganizationPicker({ current }: { current: string }) {
  const organizations = useOrganizations();
  const [, navigate] = useLocation();
  return (
    <select
      aria-label="Organization"
      className="organization-picker"
      value={current}
      onChange={(event) => navigate(`/o/${event.target.value}`)}
    >
      {organizations.map((organization) => (
        <option key={organization.id} value={organization.slug}>
          {organization.name}
        </option>
      ))}
    </select>
  );
}

/** The `New organization` form; the slug follows the name until someone edits it. */
export function NewOrganizationForm({ onDone }: { onDone?: () => void }) {
  const create = useCreateOrganization();
  const [, navigate] = useLocation();
  const [name, setName] = useState('');
  const [slug, setSlug] = useState('');
  const [slugEdited, setSlugEdited] = useState(false);
  const [error, setError] = useState<string>();
  const [pending, setPending] = useState(false);
  const hintId = useId();
  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setPending(true);
    setError(undefined);
    try {
      const organization = await create({ name: name.trim(), slug });
      onDone?.();
      navigate(`/o/${organization.slug}`);
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setPending(false);
    }
  };
  return (
    <form onSubmit={onSubmit} className="stack">
      <label>
        Name
        <input
          value={name}
          required
          onChange={(event) => {
            setName(event.target.value);
            if (!slugEdited) setSlug(slugFromName(event.target.value));
          }}
        />
      </label>
      <label>
        Slug
        <input
          value={slug}
          required
          pattern="[a-z0-9][a-z0-9\-]{1,62}[a-z0-9]"
          aria-describedby={hintId}
          onChange={(event) => {
            setSlug(event.target.value);
            setSlugEdited(true);
          }}
        />
      </label>
      <small id={hintId}>Lower-case letters, digits and dashes; part of the address /o/slug</small>
      {error && (
        <p role="alert" className="form-error">
          {error}
        </p>
      )}
      <div className="row">
        <button type="submit" className="primary" disabled={pending}>
          Create
        </button>
        {onDone && (
          <button type="button" onClick={onDone}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

/** The `New organization` button and its dialog (Escape closes it, focus returns to the button). */
export function NewOrganizationButton() {
  const dialog = useRef<HTMLDialogElement>(null);
  const [open, setOpen] = useState(false);
  const close = () => {
    dialog.current?.close();
    setOpen(false);
  };
  return (
    <>
      <button
        type="button"
        onClick={() => {
          setOpen(true);
          dialog.current?.showModal();
        }}
      >
        New organization
      </button>
      <dialog ref={dialog} aria-labelledby="new-organization-title" onClose={() => setOpen(false)}>
        <h2 id="new-organization-title">New organization</h2>
        {open && <NewOrganizationForm onDone={close} />}
      </dialog>
    </>
  );
}

/**
 * Everything under `/o/{slug}`: one sync client per organization (its outbox, drainer and live
 * streams), created when the organization opens and closed when another one does or on sign-out.
 */
import { useQueryClient } from '@tanstack/react-query';
import { type ReactNode, useEffect, useState } from 'react';
import { Link, useLocation } from 'wouter';
import {
  attachments,
  createSyncClient,
  deleteLocalData,
  pages,
  type SyncClient,
  SyncProvider,
} from '../../lib/sync/index.ts';
import { useMe, useSessionActions } from '../session/session.ts';
import { ConflictDialog } from '../sync-status/ConflictDialog.tsx';
import { OfflineBanner } from '../sync-status/OfflineBanner.tsx';
import { RejectedNotices } from '../sync-status/RejectedNotices.tsx';
import { NewOrganizationButton, OrganizationPicker } from './OrganizationControls.tsx';
import { useOrganization } from './organizations.ts';

function useOrganizationSyncClient(slug: string): SyncClient | undefined {
  const queryClient = useQueryClient();
  const [client, setClient] = useState<SyncClient>();
  useEffect(() => {
    const created = createSyncClient({
      baseUrl: window.location.origin,
      organization: slug,
      queryClient,
      entities: [pages.definition, attachments.definition],
    });
    setClient(created);
    return () => {
      setClient(undefined);
      void created.close();
    };
  }, [slug, queryClient]);
  return client;
}

export function OrganizationWorkspace({
  slug,
  view,
  children,
}: {
  slug: string;
  view: 'pages' | 'transactions';
  children: ReactNode;
}) {
  const { me } = useMe();
  const organization = useOrganization(slug);
  const client = useOrganizationSyncClient(slug);
  const session = useSessionActions();
  const [, navigate] = useLocation();

  if (!organization) {
    return (
      <main className="auth">
        <div className="auth-card">
          <h1>Organization not found</h1>
          <p>
            “{slug}” is not one of your organizations. <Link href="/">Go to your pages</Link>
          </p>
        </div>
      </main>
    );
  }
  return (
    <div className="app">
      <header className="topbar">
        <Link href="/" className="brand">
          <img src="/icon.svg" alt="" width="28" height="28" />
          <span>Sync Pages</span>
        </Link>
        <OrganizationPicker current={slug} />
        <nav aria-label="Views" className="views">
          <Link href={`/o/${slug}`} aria-current={view === 'pages' ? 'page' : undefined}>
            Pages
          </Link>
          <Link href={`/o/${slug}/transactions`} aria-current={view === 'transactions' ? 'page' : undefined}>
            Transactions
          </Link>
        </nav>
        <div className="topbar-end">
          <NewOrganizationButton />
          <span className="muted user-name">{me?.user.name}</span>
          <button
            type="button"
            onClick={async () => {
              // a shared device keeps nothing of the person: their rows, queue and client id
              await client?.close();
              await deleteLocalData().catch(() => {});
              await session.signOut();
              navigate('/sign-in', { replace: true });
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      {client ? (
        <SyncProvider client={client}>
          <OfflineBanner />
          <RejectedNotices />
          <ConflictDialog />
          {children}
        </SyncProvider>
      ) : (
        <p className="muted loading">Opening {organization.name}…</p>
      )}
    </div>
  );
}

/**
 * Routes (fixed by the product's UI contract):
 *   /                    signed out → sign-in; signed in → the first organization's pages
 *   /sign-in, /sign-up
 *   /o/{slug}            pages (list + editor), activity feed and counts
 *   /o/{slug}/transactions  the transaction debug view
 */
import { Redirect, Route, Switch } from 'wouter';
import { NewOrganizationForm } from './organizations/OrganizationControls.tsx';
import { OrganizationWorkspace } from './organizations/OrganizationWorkspace.tsx';
import { PagesScreen } from './pages/PagesScreen.tsx';
import { SignInScreen, SignUpScreen } from './session/AuthScreens.tsx';
import { useMe } from './session/session.ts';
import { TransactionsScreen } from './transactions/TransactionsScreen.tsx';

function Home() {
  const { me } = useMe();
  if (me === undefined) return <p className="muted loading">Loading…</p>;
  if (me === null) return <SignInScreen />;
  const first = me.organizations[0];
  if (first) return <Redirect to={`/o/${first.slug}`} replace />;
  return (
    <main className="auth">
      <div className="auth-card">
        <h1>Welcome, {me.user.name}</h1>
        <p>Create an organization to start writing pages.</p>
        <h2>New organization</h2>
        <NewOrganizationForm />
      </div>
    </main>
  );
}

/** Signed-in screens: signed out → the sign-in screen. */
function SignedIn({ children }: { children: React.ReactNode }) {
  const { me } = useMe();
  if (me === undefined) return <p className="muted loading">Loading…</p>;
  if (me === null) return <Redirect to="/sign-in" replace />;
  return <>{children}</>;
}

export function App() {
  return (
    <Switch>
      <Route path="/sign-in">
        <SignInScreen />
      </Route>
      <Route path="/sign-up">
        <SignUpScreen />
      </Route>
      <Route path="/o/:slug/transactions">
        {(params) => (
          <SignedIn>
            <OrganizationWorkspace slug={params.slug} view="transactions">
              <TransactionsScreen />
            </OrganizationWorkspace>
          </SignedIn>
        )}
      </Route>
      <Route path="/o/:slug">
        {(params) => (
          <SignedIn>
            <OrganizationWorkspace slug={params.slug} view="pages">
              <PagesScreen />
            </OrganizationWorkspace>
          </SignedIn>
        )}
      </Route>
      <Route path="/">
        <Home />
      </Route>
      <Route>
        <main className="auth">
          <div className="auth-card">
            <h1>Not found</h1>
            <p>
              <a href="/">Go to your pages</a>
            </p>
          </div>
        </main>
      </Route>
    </Switch>
  );
}

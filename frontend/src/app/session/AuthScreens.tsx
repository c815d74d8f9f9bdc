import { type FormEvent, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { describeError } from '../api-errors.ts';
import { useSessionActions } from './session.ts';

function AuthCard({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <main className="auth">
      <div className="auth-card">
        <p className="brand-mark" aria-hidden="true">
          <img src="/icon.svg" alt="" width="40" height="40" />
        </p>
        <h1>{title}</h1>
        {children}
      </div>
    </main>
  );
}

/** Runs a form's submit, showing its error in the form; `pending` disables the button. */
function useSubmit(action: (form: FormData) => Promise<void>) {
  const [error, setError] = useState<string>();
  const [pending, setPending] = useState(false);
  const onSubmit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    setPending(true);
    setError(undefined);
    try {
      await action(new FormData(event.currentTarget));
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setPending(false);
    }
  };
  return { error, pending, onSubmit };
}

const text = (form: FormData, name: string) => String(form.get(name) ?? '');

export function SignInScreen() {
  const session = useSessionActions();
  const [, navigate] = useLocation();
  const { error, pending, onSubmit } = useSubmit(async (form) => {
    await session.signIn({ email: text(form, 'email'), password: text(form, 'password') });
    navigate('/', { replace: true });
  });
  return (
    <AuthCard title="Sign in">
      <form onSubmit={onSubmit} className="stack">
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        {error && (
          <p role="alert" className="form-error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={pending}>
          Sign in
        </button>
      </form>
      <p className="auth-switch">
        New here? <Link href="/sign-up">Create account</Link>
      </p>
    </AuthCard>
  );
}

export function SignUpScreen() {
  const session = useSessionActions();
  const [, navigate] = useLocation();
  const { error, pending, onSubmit } = useSubmit(async (form) => {
    await session.signUp({
      name: text(form, 'name'),
      email: text(form, 'email'),
      password: text(form, 'password'),
    });
    navigate('/', { replace: true });
  });
  return (
    <AuthCard title="Create account">
      <form onSubmit={onSubmit} className="stack">
        <label>
          Name
          <input name="name" autoComplete="name" required />
        </label>
        <label>
          Email
          <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="new-password"
            minLength={8}
            required
            aria-describedby="password-hint"
          />
        </label>
        <small id="password-hint">At least 8 characters</small>
        {error && (
          <p role="alert" className="form-error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={pending}>
          Create account
        </button>
      </form>
      <p className="auth-switch">
        Already have an account? <Link href="/sign-in">Sign in</Link>
      </p>
    </AuthCard>
  );
}

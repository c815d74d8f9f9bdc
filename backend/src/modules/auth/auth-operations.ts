import { randomBytes } from 'node:crypto';
import { nanoid } from 'nanoid';
import type postgres from 'postgres';
import type { AppDeps, SessionUser } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { hashToken } from '../../core/guards.ts';
import { ERROR_CODE } from '../../core/protocol.ts';
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from './password.ts';

export interface NewSession {
  user: SessionUser;
  token: string;
  expiresAt: Date;
}

function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function signUp(
  deps: AppDeps,
  input: { email: string; password: string; name?: string | undefined },
): Promise<NewSession> {
  const email = normaliseEmail(input.email);
  const passwordHash = await hashPassword(input.password);
  const name = input.name ?? email.split('@')[0] ?? email;
  // The account and its first session commit together: a sign-up that fails half-way must not
  // leave an account behind that answers the retry with EMAIL_TAKEN.
  return deps.sql.begin(async (tx) => {
    const [user] = await tx<SessionUser[]>`
      insert into users (id, email, name, password_hash) values (${nanoid()}, ${email}, ${name}, ${passwordHash})
      on conflict (email) do nothing
      returning id, email, name`;
    if (!user) throw new AppError(409, ERROR_CODE.emailTaken, 'An account with this email already exists');
    return createSession(deps, user, tx);
  });
}

export async function signIn(deps: AppDeps, input: { email: string; password: string }): Promise<NewSession> {
  const [row] = await deps.sql<(SessionUser & { passwordHash: string })[]>`
    select id, email, name, password_hash as "passwordHash" from users where email = ${normaliseEmail(input.email)}`;
  const valid = await verifyPassword(input.password, row?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!row || !valid) throw new AppError(401, ERROR_CODE.invalidCredentials, 'Wrong email or password');
  return createSession(deps, { id: row.id, email: row.email, name: row.name });
}

async function createSession(
  deps: AppDeps,
  user: SessionUser,
  sql: postgres.Sql | postgres.TransactionSql = deps.sql,
): Promise<NewSession> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + deps.config.sessionDays * 86_400_000);
  await sql`insert into sessions (token_hash, user_id, expires_at) values (${hashToken(token)}, ${user.id}, ${expiresAt})`;
  return { user, token, expiresAt };
}

export async function signOut(deps: AppDeps, tokenHash: string): Promise<void> {
  await deps.sql`delete from sessions where token_hash = ${tokenHash}`;
  deps.liveAccess.revokeSession(tokenHash);
}

export async function describeMe(deps: AppDeps, user: SessionUser) {
  const organizations = await deps.sql<
    { id: string; slug: string; name: string; role: 'admin' | 'member' }[]
  >`
    select o.id, o.slug, o.name, m.role
    from memberships m join organizations o on o.id = m.organization_id
    where m.user_id = ${user.id}
    order by o.created_at, o.id`;
  return { user, organizations: [...organizations] };
}

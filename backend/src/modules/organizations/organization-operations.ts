import { nanoid } from 'nanoid';
import type { AppDeps, OrganizationAccess, SessionUser } from '../../core/app-env.ts';
import { AppError } from '../../core/errors.ts';
import { ERROR_CODE } from '../../core/protocol.ts';

type OrganizationRow = OrganizationAccess & { createdAt: Date };

export async function createOrganization(
  deps: AppDeps,
  user: SessionUser,
  input: { name: string; slug: string },
) {
  const rows = await deps.sql.begin(async (tx) => {
    const created = await tx<OrganizationRow[]>`
      insert into organizations (id, slug, name, created_by) values (${nanoid()}, ${input.slug}, ${input.name}, ${user.id})
      on conflict (slug) do nothing
      returning id, slug, name, created_at as "createdAt", 'admin' as role`;
    const [organization] = created;
    if (organization) {
      await tx`insert into memberships (organization_id, user_id, role) values (${organization.id}, ${user.id}, 'admin')`;
    }
    return created;
  });
  const [organization] = rows;
  if (!organization) throw new AppError(409, ERROR_CODE.slugTaken, `The slug "${input.slug}" is taken`);
  return present(organization);
}

export async function listOrganizations(deps: AppDeps, user: SessionUser) {
  const rows = await deps.sql<OrganizationRow[]>`
    select o.id, o.slug, o.name, o.created_at as "createdAt", m.role
    from memberships m join organizations o on o.id = m.organization_id
    where m.user_id = ${user.id}
    order by o.created_at, o.id`;
  return rows.map(present);
}

export async function getOrganization(deps: AppDeps, access: OrganizationAccess) {
  const [row] = await deps.sql<
    { createdAt: Date }[]
  >`select created_at as "createdAt" from organizations where id = ${access.id}`;
  return present({ ...access, createdAt: row?.createdAt ?? new Date(0) });
}

export async function addMember(
  deps: AppDeps,
  organization: OrganizationAccess,
  input: { email: string; role: 'admin' | 'member' },
) {
  const [user] = await deps.sql<SessionUser[]>`
    select id, email, name from users where email = ${input.email.trim().toLowerCase()}`;
  if (!user) throw AppError.notFound('User with this email');
  const inserted = await deps.sql`
    insert into memberships (organization_id, user_id, role) values (${organization.id}, ${user.id}, ${input.role})
    on conflict do nothing returning 1`;
  if (inserted.length === 0)
    throw new AppError(409, ERROR_CODE.alreadyMember, 'This user is already a member');
  return {
    organizationId: organization.id,
    userId: user.id,
    email: user.email,
    name: user.name,
    role: input.role,
  };
}

type Role = OrganizationAccess['role'];
type MembershipChange = { role: Role } | 'remove';

/**
 * Locks the organization's admins, the acting admin and the member, in one order, so that of two
 * admins demoting or removing each other at once one waits for the other and sees its effect:
 * the acting admin must still be an admin (else 403), and an organization never loses its last
 * admin (409 LAST_ADMIN).
 */
async function changeMembership(
  deps: AppDeps,
  organization: OrganizationAccess,
  actor: SessionUser,
  userId: string,
  change: MembershipChange,
) {
  return deps.sql.begin(async (tx) => {
    const locked = await tx<{ userId: string; role: Role }[]>`
      select user_id as "userId", role from memberships
      where organization_id = ${organization.id}
        and (role = 'admin' or user_id = ${userId} or user_id = ${actor.id})
      order by user_id
      for update`;
    if (locked.find((row) => row.userId === actor.id)?.role !== 'admin') {
      throw new AppError(403, ERROR_CODE.forbidden, 'Only admins of this organization may do this');
    }
    const member = locked.find((row) => row.userId === userId);
    if (!member) throw AppError.notFound('Member');
    const admins = locked.filter((row) => row.role === 'admin').length;
    const losesAdmin = member.role === 'admin' && (change === 'remove' || change.role !== 'admin');
    if (losesAdmin && admins === 1) {
      throw new AppError(
        409,
        ERROR_CODE.lastAdmin,
        'The last admin of an organization cannot be demoted or removed; make another member admin first',
      );
    }
    if (change === 'remove') {
      await tx`delete from memberships where organization_id = ${organization.id} and user_id = ${userId}`;
      return;
    }
    await tx`update memberships set role = ${change.role} where organization_id = ${organization.id} and user_id = ${userId}`;
  });
}

export async function changeMemberRole(
  deps: AppDeps,
  organization: OrganizationAccess,
  actor: SessionUser,
  userId: string,
  role: Role,
) {
  await changeMembership(deps, organization, actor, userId, { role });
  const [user] = await deps.sql<SessionUser[]>`select id, email, name from users where id = ${userId}`;
  if (!user) throw AppError.notFound('Member');
  return { organizationId: organization.id, userId, email: user.email, name: user.name, role };
}

/** The removed member's open streams of this organization end at once (in other API processes within seconds). */
export async function removeMember(
  deps: AppDeps,
  organization: OrganizationAccess,
  actor: SessionUser,
  userId: string,
) {
  await changeMembership(deps, organization, actor, userId, 'remove');
  deps.liveAccess.revokeMembership(userId, organization.id);
}

function present(row: OrganizationRow) {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    role: row.role,
    createdAt: row.createdAt.toISOString(),
  };
}

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

function present(row: OrganizationRow) {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    role: row.role,
    createdAt: row.createdAt.toISOString(),
  };
}

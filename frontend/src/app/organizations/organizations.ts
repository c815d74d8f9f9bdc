import { useQueryClient } from '@tanstack/react-query';
import { createOrganization } from '../../api.gen/index.ts';
import { failure } from '../api-errors.ts';
import { useMe } from '../session/session.ts';

export type OrganizationSummary = { id: string; slug: string; name: string; role: 'admin' | 'member' };

/** The signed-in user's organizations, as `/api/me` lists them. */
export function useOrganizations(): OrganizationSummary[] {
  return useMe().me?.organizations ?? [];
}

export function useOrganization(slug: string): OrganizationSummary | undefined {
  return useOrganizations().find((organization) => organization.slug === slug);
}

/** A slug the API accepts, suggested from a name: "Acme Inc." → "acme-inc". */
export function slugFromName(name: string): string {
  return name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
}

export function useCreateOrganization() {
  const queryClient = useQueryClient();
  return async (body: { name: string; slug: string }) => {
    const { data, error, response } = await createOrganization({ body });
    if (!data) return failure(response, error);
    await queryClient.invalidateQueries({ queryKey: ['me'] });
    return data;
  };
}

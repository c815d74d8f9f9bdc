/**
 * Who is signed in, from `GET /api/me` (the HttpOnly session cookie authenticates every call).
 * The last answer is kept in localStorage so that the app opens signed in while offline.
 *
 *   unknown ──/api/me 200──► signed in (me)      ──sign-out──► signed out (null)
 *           └─/api/me 401──► signed out (null)   ──sign-in───► signed in
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { getMe, type Me, signIn, signOut, signUp } from '../../api.gen/index.ts';
import { failure } from '../api-errors.ts';

const ME_KEY = ['me'] as const;
const STORED_ME = 'sync-pages.me';

function storedMe(): Me | undefined {
  try {
    const text = localStorage.getItem(STORED_ME);
    return text ? (JSON.parse(text) as Me) : undefined;
  } catch {
    return undefined;
  }
}

async function fetchMe(): Promise<Me | null> {
  const { data, error, response } = await getMe();
  if (response?.status === 401) {
    localStorage.removeItem(STORED_ME);
    return null;
  }
  if (!data) return failure(response, error);
  localStorage.setItem(STORED_ME, JSON.stringify(data));
  return data;
}

/** `undefined` while unknown, `null` when signed out. */
export function useMe(): { me: Me | null | undefined; isFetching: boolean } {
  const query = useQuery({ queryKey: ME_KEY, queryFn: fetchMe, initialData: storedMe, staleTime: 30_000 });
  return { me: query.data, isFetching: query.isFetching };
}

export function useSessionActions() {
  const queryClient = useQueryClient();
  const refresh = () => queryClient.fetchQuery({ queryKey: ME_KEY, queryFn: fetchMe, staleTime: 0 });
  return {
    async signIn(body: { email: string; password: string }): Promise<Me | null> {
      const { data, error, response } = await signIn({ body });
      if (!data) return failure(response, error);
      return refresh();
    },
    async signUp(body: { name: string; email: string; password: string }): Promise<Me | null> {
      const { data, error, response } = await signUp({ body });
      if (!data) return failure(response, error);
      return refresh();
    },
    async signOut(): Promise<void> {
      await signOut().catch(() => undefined);
      localStorage.removeItem(STORED_ME);
      queryClient.clear();
      queryClient.setQueryData(ME_KEY, null);
    },
    refresh,
  };
}

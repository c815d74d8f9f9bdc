/**
 * Who is signed in, from `GET /api/me` (the HttpOnly session cookie authenticates every call).
 * The last answer is kept in localStorage so that the app opens signed in while offline. The
 * cookie is only ever set by a sign-in or sign-up, which store the answer, so a device without
 * one is signed out and does not ask (a signed-out `/api/me` is a 401 the browser logs).
 *
 *   stored me ──/api/me 200──► signed in (me)      ──sign-out──► signed out (null)
 *             └─/api/me 401──► signed out (null)   ──sign-in───► signed in
 *   none ─────────────────────► signed out (null)
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

/** `null` when signed out (`undefined` only while a sign-in's answer is being read). */
export function useMe(): { me: Me | null | undefined; isFetching: boolean } {
  const query = useQuery({
    queryKey: ME_KEY,
    queryFn: fetchMe,
    initialData: () => storedMe() ?? null,
    // signed out stays so until a sign-in asks again
    staleTime: (current) => (current.state.data === null ? Number.POSITIVE_INFINITY : 30_000),
  });
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

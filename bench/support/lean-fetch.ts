/**
 * A `fetch` for the Electric client's `fetchClient` option on undici's `request` API over one
 * pool of kept-alive connections to the API, as a Node process holding many long-polling shapes
 * can use: Node's global `fetch` builds a web Request, a fetch controller and a body stream per
 * request in JavaScript, where `request` parses into a plain Node stream whose text is read
 * whole. The answer is a web Response all the same (status, headers, text). An SSE request,
 * whose one response streams for minutes, goes to the global `fetch`.
 */
import { Pool } from 'undici';

/** Statuses whose web Response must have no body. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** Shape requests are GETs, which is all this sends. */
export function leanFetch(apiUrl: string): typeof fetch {
  const pool = new Pool(new URL(apiUrl).origin);
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input);
    if (url.searchParams.get('live_sse') === 'true') return fetch(input, init);
    const res = await pool.request({
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      headers: Object.fromEntries(new Headers(init?.headers)),
      signal: init?.signal ?? undefined,
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const each of Array.isArray(value) ? value : [value ?? '']) headers.append(name, each);
    }
    const status = res.statusCode;
    if (NULL_BODY_STATUSES.has(status)) {
      await res.body.dump();
      return new Response(null, { status, headers });
    }
    return new Response(await res.body.text(), { status, headers });
  };
}

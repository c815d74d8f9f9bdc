/**
 * The generated SDK's client, configured once: every request carries `X-Client-Id` and the
 * session (a bearer token when given, else the session cookie).
 */
import { type Client, createClient, createConfig } from '../../api.gen/client/index.ts';
import { CLIENT_ID_HEADER } from './constants.ts';

export type ApiClient = Client;

export function createApiClient(options: {
  baseUrl: string;
  /** The device's client id, or a function that returns it once it is known. */
  clientId: string | (() => string);
  token?: string;
  fetch?: typeof fetch;
}): ApiClient {
  const client = createClient(
    createConfig({
      baseUrl: options.baseUrl,
      credentials: 'include',
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
  );
  const { clientId } = options;
  client.interceptors.request.use((request) => {
    const id = typeof clientId === 'function' ? clientId() : clientId;
    if (id) request.headers.set(CLIENT_ID_HEADER, id);
    // set here rather than through `auth`, which only applies to the SDK's own functions
    if (options.token) request.headers.set('Authorization', `Bearer ${options.token}`);
    return request;
  });
  return client;
}

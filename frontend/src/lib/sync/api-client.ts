/**
 * The generated SDK's client, configured once: every request carries `X-Client-Id` and the
 * session (a bearer token when given, else the session cookie).
 */
import { type Client, createClient, createConfig } from '../../api.gen/client/index.ts';
import { CLIENT_ID_HEADER } from './constants.ts';

export type ApiClient = Client;

export function createApiClient(options: {
  baseUrl: string;
  clientId: string;
  token?: string;
  fetch?: typeof fetch;
}): ApiClient {
  return createClient(
    createConfig({
      baseUrl: options.baseUrl,
      credentials: 'include',
      headers: { [CLIENT_ID_HEADER]: options.clientId },
      ...(options.token ? { auth: options.token } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    }),
  );
}

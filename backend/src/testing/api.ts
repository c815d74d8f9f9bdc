/**
 * A real API over real HTTP on a throwaway PostgreSQL, plus a small client for tests and
 * benchmarks. Nothing of our own stack is mocked.
 */
import { startCdcWorker } from '@sync/cdc/worker';
import pino from 'pino';
import type { AppConfig } from '../core/app-env.ts';
import type { EmbeddedCluster } from '../db/embedded-postgres.ts';
import { type ApiServer, startApiServer } from '../server.ts';
import { startTestDatabase } from './database.ts';

export interface TestStack {
  cluster: EmbeddedCluster;
  api: ApiServer;
  client: ApiClient;
  stop(): Promise<void>;
}

/** The API on a throwaway database; with `cdc: true` also the real CDC worker, in process. */
export async function startTestStack(
  options: { cdc?: boolean; config?: Partial<AppConfig> } = {},
): Promise<TestStack> {
  const cluster = await startTestDatabase();
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const api = await startApiServer({ databaseUrl: cluster.url, logger, config: options.config });
  const worker = options.cdc ? startCdcWorker({ databaseUrl: cluster.url, logger }) : undefined;
  await worker?.streaming();
  return {
    cluster,
    api,
    client: new ApiClient(api.url),
    async stop() {
      await worker?.stop();
      await api.close();
      await cluster.destroy();
    },
  };
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface Member {
  token: string;
  user: { id: string; email: string; name: string };
  org: { id: string; slug: string };
}

let counter = 0;
export const uniqueName = (prefix: string) =>
  `${prefix}-${process.pid}-${Date.now().toString(36)}-${++counter}`;

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T = any>(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(options.body);
    }
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON (metrics, docs): keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  async signUp(email = `${uniqueName('user')}@example.com`, password = 'correct horse battery') {
    const res = await this.request('POST', '/api/auth/sign-up', { body: { email, password } });
    if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body as { token: string; user: Member['user'] };
  }

  /** A new user who is the admin of a new organization. */
  async newMember(): Promise<Member> {
    const { token, user } = await this.signUp();
    const slug = uniqueName('org').toLowerCase();
    const res = await this.request('POST', '/api/organizations', { token, body: { name: slug, slug } });
    if (res.status !== 201) throw new Error(`organization failed: ${res.status} ${JSON.stringify(res.body)}`);
    return { token, user, org: { id: res.body.id, slug: res.body.slug } };
  }
}

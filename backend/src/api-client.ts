/**
 * A small HTTP client of our own API (real fetch, JSON): `npm start` creates the demo account
 * with it, and the tests and benchmarks drive the API through it.
 */
// biome-ignore lint/suspicious/noExplicitAny: the parsed JSON of any route; callers narrow it
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

  // biome-ignore lint/suspicious/noExplicitAny: as above
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

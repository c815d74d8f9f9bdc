import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Db, Sql } from '../db/client.ts';
import type { ActivityNotifier } from './activity-notifier.ts';
import type { LiveAccessRegistry } from './live-access.ts';
import type { Metrics } from './metrics.ts';

export interface AppConfig {
  /** Secure cookies and strict defaults outside development and tests. */
  production: boolean;
  sessionDays: number;
  /** Concurrent SSE streams (activities and shapes) one user may hold open in one process. */
  maxStreamsPerUser: number;
  /** How often the sessions and memberships of open live streams are re-checked. */
  liveAccessCheckMs: number;
  /** How long a live shape request waits for a change before answering up-to-date. */
  shapeLongPollMs: number;
  /** Rows per chunk of a shape's initial snapshot: the client processes one while the next streams. */
  shapeSnapshotChunkRows: number;
  /** Proxy shapes to this Electric service instead of serving them from the activity log. */
  electricUrl?: string | undefined;
  electricSecret?: string | undefined;
  /** Replication slot of the CDC worker whose status and epoch the API reports. */
  cdcSlotName: string;
  /** WAL (bytes) a streaming CDC worker may hold back before `/api/health` says `lagging`. */
  cdcLaggingBytes: number;
  /**
   * How long an undo waits for the CDC worker to record the transaction it undoes (usually a
   * few milliseconds) before answering 409 TRANSACTION_NOT_RECORDED.
   */
  undoRecordWaitMs: number;
  /** Origins allowed to call the API from a browser (CORS), e.g. the web app's dev server. */
  corsOrigins: string[];
  /** Failed sign-ins allowed per window before 429 (modules/auth/sign-in-limits.ts). */
  signInLimits: { perAccount: FailureLimit; perAddress: FailureLimit };
  /** Behind a reverse proxy: the client address is the last X-Forwarded-For entry. */
  trustProxy: boolean;
  /** Bearer token `/api/metrics` requires; without one it answers loopback clients only. */
  metricsToken?: string | undefined;
}

export interface FailureLimit {
  failures: number;
  windowMs: number;
}

/** What every request can reach: the database and the process-wide services. */
export interface AppDeps {
  db: Db;
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
  notifier: ActivityNotifier;
  liveAccess: LiveAccessRegistry;
  config: AppConfig;
}

export interface SessionUser {
  id: string;
  email: string;
  name: string;
}

export interface OrganizationAccess {
  id: string;
  slug: string;
  name: string;
  role: 'admin' | 'member';
}

/**
 * Headers the app's middleware add to every finished response (CORS), applied by that middleware
 * to Hono's responses and by `sendStraight` (straight-response.ts) to the ones it writes itself.
 */
export interface AddedHeaders {
  set: [name: string, value: string][];
  /** Appended to a value the response already has (`vary`). */
  append: [name: string, value: string][];
}

export type AppEnv = {
  /** Node's request and response (@hono/node-server); absent under `app.request`. */
  Bindings: Partial<HttpBindings>;
  Variables: {
    deps: AppDeps;
    user?: SessionUser;
    sessionTokenHash?: string;
    organization?: OrganizationAccess;
    /** Set on live requests (live-stream.ts): aborts when the client leaves or loses access. */
    liveSignal?: AbortSignal;
    /** Set by hono-rate-limiter on the routes it limits. */
    rateLimit?: { limit: number; used: number; remaining: number; resetTime?: Date | undefined };
    addedHeaders?: AddedHeaders;
  };
};

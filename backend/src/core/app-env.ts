import type { Logger } from 'pino';
import type { Db, Sql } from '../db/client.ts';
import type { ActivityNotifier } from './activity-notifier.ts';
import type { Metrics } from './metrics.ts';

export interface AppConfig {
  /** Secure cookies and strict defaults outside development and tests. */
  production: boolean;
  sessionDays: number;
  /** Concurrent activity streams one user may hold open. */
  maxStreamsPerUser: number;
  /** How long a live shape request waits for a change before answering up-to-date. */
  shapeLongPollMs: number;
  /** Rows per chunk of a shape's initial snapshot: the client processes one while the next streams. */
  shapeSnapshotChunkRows: number;
  /** Proxy shapes to this Electric service instead of serving them from the activity log. */
  electricUrl?: string | undefined;
  electricSecret?: string | undefined;
  /** Replication slot of the CDC worker whose status and epoch the API reports. */
  cdcSlotName: string;
  /** Origins allowed to call the API from a browser (CORS), e.g. the web app's dev server. */
  corsOrigins: string[];
}

/** What every request can reach: the database and the process-wide services. */
export interface AppDeps {
  db: Db;
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
  notifier: ActivityNotifier;
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

export type AppEnv = {
  Variables: {
    deps: AppDeps;
    user?: SessionUser;
    sessionTokenHash?: string;
    organization?: OrganizationAccess;
  };
};

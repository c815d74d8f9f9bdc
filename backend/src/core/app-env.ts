import type { Logger } from 'pino';
import type { Db, Sql } from '../db/client.ts';
import type { Metrics } from './metrics.ts';

export interface AppConfig {
  /** Secure cookies and strict defaults outside development and tests. */
  production: boolean;
  sessionDays: number;
}

/** What every request can reach: the database and the process-wide services. */
export interface AppDeps {
  db: Db;
  sql: Sql;
  logger: Logger;
  metrics: Metrics;
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
    authenticatedBy?: 'bearer' | 'cookie';
    organization?: OrganizationAccess;
  };
};

import { reconnectDelaySeconds } from '@sync/db/reconnect-delay';
import * as schema from '@sync/db/schema';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';

export type Sql = postgres.Sql;
/** A client or an open transaction: anything that runs a query. */
export type Queryable = postgres.Sql | postgres.TransactionSql;
export type Db = ReturnType<typeof createDb>['db'];

/**
 * Two pools: drizzle replaces postgres.js's date parsers and serializers on the client it is
 * given, so raw queries get a client of their own that behaves as postgres.js documents.
 */
export function createDb(url: string, options: { max?: number } = {}) {
  const connect = () =>
    postgres(url, {
      max: options.max ?? 10,
      onnotice: () => {},
      connection: { application_name: 'sync-api' },
      backoff: reconnectDelaySeconds,
    });
  const sql = connect();
  const drizzleClient = connect();
  return {
    sql,
    db: drizzle(drizzleClient, { schema }),
    end: async () => {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}

/**
 * A real API over real HTTP on a throwaway PostgreSQL, plus a small client for tests and
 * benchmarks. Nothing of our own stack is mocked.
 */
import { startCdcWorker } from '@sync/cdc/worker';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import pino from 'pino';
import { ApiClient } from '../api-client.ts';
import type { AppConfig } from '../core/app-env.ts';
import { type ApiServer, startApiServer } from '../server.ts';

export interface TestStack {
  cluster: EmbeddedCluster;
  api: ApiServer;
  client: ApiClient;
  stop(): Promise<void>;
}

/** The API on a throwaway database; with `cdc: true` also the real CDC worker, in process. */
export async function startTestStack(
  options: { cdc?: boolean; config?: Partial<AppConfig>; webRoot?: string } = {},
): Promise<TestStack> {
  const cluster = await startTestDatabase();
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const api = await startApiServer({
    databaseUrl: cluster.url,
    logger,
    config: options.config,
    webRoot: options.webRoot,
  });
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

export { ApiClient, type ApiResponse, type Member, uniqueName } from '../api-client.ts';

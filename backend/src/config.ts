/**
 * The API's variables, parsed once by its entry point (main.ts; `npm start` extends them for
 * its launcher). Everything else in AppConfig is fixed (`defaultAppConfig` in server.ts); tests
 * and benchmarks pass settings to `startApiServer` instead of setting variables.
 */

import {
  flag,
  listenHost,
  listenPort,
  logLevel,
  optionalText,
  required,
  slotName,
  unsetWhenEmpty,
} from '@sync/db/environment';
import { z } from 'zod';
import type { AppConfig } from './core/app-env.ts';

/** What the API reads of the environment, wherever it runs. */
export const ApiSettingsEnvironment = z.object({
  /** `production`: JSON log lines and secure cookies; anything else: readable lines. */
  NODE_ENV: optionalText,
  CDC_SLOT_NAME: slotName,
  ELECTRIC_URL: unsetWhenEmpty(z.url({ error: 'expected the URL of an Electric service' }).optional()),
  ELECTRIC_SECRET: optionalText,
  // an empty list is a choice (no browser origin), not the default
  CORS_ORIGINS: z
    .string()
    .default('http://localhost:5173')
    .transform((value) => value.split(',').filter(Boolean)),
  TRUST_PROXY: flag,
  METRICS_TOKEN: optionalText,
});

/** The API on its own (`npm run start -w backend`). */
export const ApiEnvironment = ApiSettingsEnvironment.extend({
  DATABASE_URL: required('the PostgreSQL to use (wal_level=logical)'),
  PORT: listenPort,
  HOST: listenHost,
  LOG_LEVEL: logLevel('info'),
});

export function apiSettings(env: z.output<typeof ApiSettingsEnvironment>): Partial<AppConfig> {
  return {
    production: env.NODE_ENV === 'production',
    cdcSlotName: env.CDC_SLOT_NAME,
    electricUrl: env.ELECTRIC_URL,
    electricSecret: env.ELECTRIC_SECRET,
    corsOrigins: env.CORS_ORIGINS,
    trustProxy: env.TRUST_PROXY,
    metricsToken: env.METRICS_TOKEN,
  };
}

import { defineConfig } from 'vitest/config';

/** The sync library: pure rules, and integration against a real API, CDC worker and PostgreSQL. */
export default defineConfig({
  test: {
    name: 'frontend',
    include: ['test/sync/**/*.test.ts'],
    setupFiles: ['test/sync/support/indexeddb-global.ts'],
    // suites that need the stack start their own throwaway PostgreSQL
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

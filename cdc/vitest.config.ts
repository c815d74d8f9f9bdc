import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'cdc',
    include: ['test/**/*.test.ts'],
    // every suite starts its own throwaway PostgreSQL
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

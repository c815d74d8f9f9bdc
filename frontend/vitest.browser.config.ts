import { defineConfig } from 'vitest/config';

/** The web app in Debian's Chromium against a real API, CDC worker and PostgreSQL. */
export default defineConfig({
  test: {
    name: 'browser',
    include: ['test/browser/**/*.test.ts'],
    globalSetup: ['test/browser/build-web-app.ts'],
    // each file starts PostgreSQL, the API, the worker and a browser; files run one at a time
    // so two browsers do not fight over the machine's cores
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});

import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['backend', 'cdc', 'frontend/vitest.config.ts', 'frontend/vitest.browser.config.ts'],
  },
});

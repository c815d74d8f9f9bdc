/**
 * The web app's build. `npm start` builds it into dist/ when the sources are newer (see
 * scripts/web-app-build.ts); `npm run dev` serves it with hot reload and proxies /api to the API.
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

const apiUrl = process.env.API_URL ?? `http://localhost:${process.env.PORT ?? 3000}`;

export default defineConfig({
  plugins: [
    react(),
    // The app shell (HTML, JS, CSS, icon) is precached, so a reload or a fresh open while offline
    // shows the app; its data comes from IndexedDB. API calls are never cached by the worker.
    VitePWA({
      registerType: 'autoUpdate',
      injectRegister: false,
      includeAssets: ['icon.svg'],
      manifest: {
        name: 'Sync Pages',
        short_name: 'Pages',
        description: 'Pages that sync live, offline-first, with a full audit trail.',
        theme_color: '#1f4fd1',
        background_color: '#f6f7fb',
        display: 'standalone',
        icons: [{ src: '/icon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' }],
      },
      workbox: {
        globPatterns: ['**/*.{js,css,html,svg,webmanifest}'],
        navigateFallback: '/index.html',
        navigateFallbackDenylist: [/^\/api\//],
        cleanupOutdatedCaches: true,
        // the first visit's page is controlled at once, so it already reloads offline
        clientsClaim: true,
        skipWaiting: true,
      },
    }),
  ],
  server: { port: 5173, strictPort: true, proxy: { '/api': { target: apiUrl } } },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
});

/**
 * The web app's production build (frontend/dist), made when it is missing or older than its
 * sources, so `npm start` and the browser tests never serve a stale app and nobody runs a
 * separate build step.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const WEB_APP_ROOT = resolve(import.meta.dirname, '../frontend');
export const WEB_APP_DIST = join(WEB_APP_ROOT, 'dist');
const SOURCES = ['index.html', 'vite.config.ts', 'package.json', 'src', 'public'];

function newestChange(path: string): number {
  if (!existsSync(path)) return 0;
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestChange(join(path, entry)));
  return newest;
}

function webAppIsStale(): boolean {
  const built = join(WEB_APP_DIST, 'index.html');
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  return SOURCES.some((source) => newestChange(join(WEB_APP_ROOT, source)) > builtAt);
}

/** Builds the app when its sources are newer than dist/; returns whether it built. */
export async function ensureWebAppBuilt(): Promise<boolean> {
  if (!webAppIsStale()) return false;
  const { build } = await import('vite');
  // Vite builds React's development bundle when NODE_ENV says test or development (as under vitest)
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({ root: WEB_APP_ROOT, mode: 'production', logLevel: 'warn' });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
  return true;
}

/**
 * `npm run dev`: what `npm start` runs (PostgreSQL, API, CDC worker) on PORT (3000), plus Vite's
 * dev server for the web app with hot reload on http://localhost:5173, proxying /api to the API.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'vite';
import { WEB_APP_ROOT } from './web-app-build.ts';

const api = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], { stdio: 'inherit' });
const vite = await createServer({ root: WEB_APP_ROOT });
await vite.listen();
vite.printUrls();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await vite.close();
  api.kill('SIGTERM');
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
api.on('exit', async (code) => {
  await stop();
  process.exit(code ?? 0);
});

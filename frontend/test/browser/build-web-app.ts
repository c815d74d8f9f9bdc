import { ensureWebAppBuilt } from '../../../scripts/web-app-build.ts';

/** Once per run: the tests drive the production build, rebuilt when its sources changed. */
export default async function buildWebApp(): Promise<void> {
  await ensureWebAppBuilt();
}

/**
 * Regenerates the API client in src/api.gen from the backend's routes:
 * `npm run generate:sdk -w frontend`. A test fails when the committed client is out of date.
 */
import { fileURLToPath } from 'node:url';
import { createClient } from '@hey-api/openapi-ts';
import { openApiDocument } from '@sync/backend/openapi-document';

export const SDK_FOLDER = fileURLToPath(new URL('../src/api.gen', import.meta.url));

/** Writes the generated client into `output` (the committed folder by default). */
export async function generateSdk(output = SDK_FOLDER): Promise<void> {
  await createClient({
    input: (await openApiDocument()) as Record<string, unknown>,
    output: { path: output },
    plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
    logs: { level: 'silent' },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await generateSdk();

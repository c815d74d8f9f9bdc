import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { generateSdk, SDK_FOLDER } from '../../scripts/generate-sdk.ts';

async function filesUnder(folder: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(folder, path), await readFile(path, 'utf8'));
  }
  return files;
}

it('the committed SDK is what the backend routes generate (else: npm run generate:sdk -w frontend)', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'sdk-'));
  try {
    await generateSdk(folder);
    const fresh = await filesUnder(folder);
    const committed = await filesUnder(SDK_FOLDER);
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [path, text] of fresh) expect(committed.get(path), path).toBe(text);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

/**
 * `npm test`: every suite of every workspace, then one closing line `N passed, N failed` read
 * from vitest's JSON report, so a run that executed no test is visible.
 * Extra arguments go to vitest (`npm test -- backend/test/pages.test.ts`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const report = '.test-results/vitest.json';
mkdirSync('.test-results', { recursive: true });
const run = spawnSync(
  'npx',
  [
    'vitest',
    'run',
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const result = JSON.parse(readFileSync(report, 'utf8'));
  passed = result.numPassedTests;
  failed = result.numFailedTests + (result.numRuntimeErrorTestSuites ?? 0);
  skipped = result.numPendingTests + result.numTodoTests;
} catch {
  failed = Math.max(1, failed);
}
// vitest also fails a run for errors outside any test (an unhandled rejection): count them
if (run.status !== 0 && failed === 0) {
  failed = 1;
  console.log('vitest reported errors outside the tests (see above)');
}
const ok = run.status === 0 && failed === 0 && passed > 0;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);

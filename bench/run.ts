/**
 * `npm run bench [scenario...]`: runs the benchmark scenarios (all by default). Each prints its
 * figures beside a baseline measured in the same run, because these machines are noisy.
 */
export {};

const scenarios: Record<string, () => Promise<{ run(): Promise<void> }>> = {
  write: () => import('./scenarios/write.ts'),
  cdc: () => import('./scenarios/cdc.ts'),
  shapes: () => import('./scenarios/shapes.ts'),
  client: () => import('./scenarios/client.ts'),
  web: () => import('./scenarios/web.ts'),
  undo: () => import('./scenarios/undo.ts'),
  'activity-indexes': () => import('./scenarios/activity-indexes.ts'),
};

const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : Object.keys(scenarios);
for (const name of names) {
  const load = scenarios[name];
  if (!load) {
    console.error(`unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== ${name} ==`);
  await (await load()).run();
}
process.exit(0);

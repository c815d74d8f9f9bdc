/**
 * Which code may import which, checked by `npm run lint` (dependency-cruiser).
 *
 *            ┌──────────────┐
 *            │  frontend/   │  src: the browser app, none of the packages below;
 *            └──────┬───────┘  scripts and tests: any of them (declared as devDependencies)
 *                   ▼
 *            ┌──────────────┐
 *            │  backend/    │  src/core ──✗──► src/modules (core knows no module)
 *            └──┬────────┬──┘
 *   src/testing │        │
 *   and tests   ▼        │
 *     ┌──────────────┐   │
 *     │    cdc/      │   │     the worker never imports the API
 *     └──────┬───────┘   │
 *            ▼           ▼
 *            ┌──────────────┐
 *            │     db/      │  imports no other package of this repository
 *            └──────────────┘
 *
 * The arrows are the packages' own package.json files: a package's code may import another of
 * these packages only when its package.json declares it (its `src`, outside `src/testing`,
 * only from `dependencies`; production code never imports a `src/testing` harness). Tests
 * (`test/`) may import across, to run the parts together.
 * No import cycles anywhere; an npm package imported must be declared by the nearest
 * package.json, and production code must not import a devDependency.
 */
const { readFileSync } = require('node:fs');

const root = JSON.parse(readFileSync('package.json', 'utf8'));
const workspaces = root.workspaces.map((dir) => {
  const manifest = JSON.parse(readFileSync(`${dir}/package.json`, 'utf8'));
  return {
    dir,
    name: manifest.name,
    dependencies: Object.keys(manifest.dependencies ?? {}),
    devDependencies: Object.keys(manifest.devDependencies ?? {}),
  };
});

/** Code of a package outside its tests, that ships with it: `src`, minus the test harness. */
const productionCode = (dir) => `^${dir}/src/(?!testing/)`;
/** Code of a package that may use its devDependencies, tests aside: the test harness, scripts, configs. */
const toolingCode = (dir) => `^${dir}/(?!src/|test/)|^${dir}/src/testing/`;

const undeclaredWorkspaceRules = workspaces.flatMap((from) =>
  workspaces
    .filter((to) => to.dir !== from.dir)
    .flatMap((to) => {
      const rules = [];
      if (!from.dependencies.includes(to.name)) {
        rules.push({
          name: 'undeclared-workspace-dependency',
          comment: `${from.name} does not list ${to.name} in its package.json dependencies`,
          severity: 'error',
          from: { path: productionCode(from.dir) },
          to: { path: `^${to.dir}/` },
        });
      }
      if (!from.dependencies.includes(to.name) && !from.devDependencies.includes(to.name)) {
        rules.push({
          name: 'undeclared-workspace-dependency',
          comment: `${from.name} does not list ${to.name} in its package.json (dev)dependencies`,
          severity: 'error',
          from: { path: toolingCode(from.dir) },
          to: { path: `^${to.dir}/` },
        });
      }
      return rules;
    }),
);

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles make load order and the layering ambiguous (generated code aside).',
      severity: 'error',
      from: { pathNot: '^frontend/src/api.gen/' },
      to: { circular: true },
    },
    ...undeclaredWorkspaceRules,
    {
      name: 'production-code-imports-no-test-harness',
      comment:
        "src/testing may use devDependencies (the backend's runs the worker in process): production code never imports it.",
      severity: 'error',
      from: { path: workspaces.map((w) => productionCode(w.dir)).join('|') },
      to: { path: '^[^/]+/src/testing/' },
    },
    {
      name: 'core-imports-no-module',
      comment: 'backend/src/core is what every module builds on: it must not know any of them.',
      severity: 'error',
      from: { path: '^backend/src/core/' },
      to: { path: '^backend/src/modules/' },
    },
    {
      name: 'no-undeclared-npm-package',
      comment:
        'An npm package a workspace imports must be declared by its package.json or the root one (scripts/ and bench/ belong to the root, which runs them with everything installed).',
      severity: 'error',
      from: { path: workspaces.map((w) => `^${w.dir}/`).join('|') },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'production-code-uses-no-dev-dependency',
      comment: 'A devDependency is not installed where the package runs without its tests.',
      severity: 'error',
      from: { path: workspaces.map((w) => productionCode(w.dir)).join('|') },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing fails at run time (virtual: modules are made by Vite).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true, pathNot: '^virtual:' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // the web app's build (packages' own dist folders inside node_modules are what they import)
    exclude: { path: '^frontend/dist/|^\\.turbo/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // a workspace may use what the root package.json declares (npm installs it for every workspace)
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.json'],
    },
  },
};

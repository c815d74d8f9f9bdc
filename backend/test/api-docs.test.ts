/**
 * The contract docs stay true to the code: every route of the OpenAPI document, every error
 * code, header and health word is in docs/API.md (and no route is there that the API does not
 * have); every protocol word of the shape endpoint is in docs/ELECTRIC-PROTOCOL.md; the
 * README's path of one write names at most 6 files; and every repository path the docs and the
 * READMEs name exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CDC_HEALTH_WORDS, CDC_STATUS_NAMES } from '@sync/db/cdc-status';
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE, HEADER } from '../src/core/protocol.ts';
import { CONTROL, ELECTRIC_HEADER, PROTOCOL_PARAMS } from '../src/modules/shapes/electric-protocol.ts';
import { openApiDocument } from '../src/openapi-document.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');
const apiDoc = read('docs/API.md');
const protocolDoc = read('docs/ELECTRIC-PROTOCOL.md');

/** Routes that serve the reference itself and are not part of the document they serve. */
const REFERENCE_ROUTES = ['GET /api/openapi.json', 'GET /api/docs'];

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

let documentedRoutes: string[];

beforeAll(async () => {
  // the API's own document, built in process (no database is contacted)
  const doc = (await openApiDocument()) as { paths: Record<string, Partial<Record<string, unknown>>> };
  documentedRoutes = Object.entries(doc.paths).flatMap(([path, operations]) =>
    METHODS.filter((method) => operations[method] !== undefined).map(
      (method) => `${method.toUpperCase()} ${path}`,
    ),
  );
});

/** The text of a `## heading` section, up to the next `## `. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `section "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

const quoted = (markdown: string) => new Set([...markdown.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? ''));

describe('docs/API.md', () => {
  it('lists every route of the OpenAPI document in its route table, and no other', () => {
    const table = section(apiDoc, 'Routes');
    const listed = [...table.matchAll(/^\| `([A-Z]+ \/api[^`]*)` \|/gm)].map((m) => m[1]);
    expect(documentedRoutes.length).toBeGreaterThan(20);
    expect(listed.filter((route) => !REFERENCE_ROUTES.includes(route ?? '')).sort()).toEqual(
      [...documentedRoutes].sort(),
    );
    for (const route of REFERENCE_ROUTES) expect(listed).toContain(route);
  });

  it('explains every error code, and no code the API does not have', () => {
    const table = section(apiDoc, 'Errors');
    const explained = [...table.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => m[1]);
    expect(explained.sort()).toEqual(Object.values(ERROR_CODE).sort());
  });

  it('names every transaction header and every health word', () => {
    const words = quoted(apiDoc);
    const lowerCased = new Set([...words].map((word) => word.toLowerCase()));
    for (const header of Object.values(HEADER)) expect(lowerCased, header).toContain(header);
    for (const word of [...CDC_HEALTH_WORDS, ...CDC_STATUS_NAMES]) expect(words, word).toContain(word);
  });
});

describe('docs/ELECTRIC-PROTOCOL.md', () => {
  it('names every response header, control message and forwarded parameter of the shape endpoint', () => {
    const words = quoted(protocolDoc);
    const text = protocolDoc;
    for (const header of Object.values(ELECTRIC_HEADER)) expect(words, header).toContain(header);
    for (const control of Object.values(CONTROL)) expect(text, control).toContain(control);
    for (const param of PROTOCOL_PARAMS) expect(words, param).toContain(param);
  });
});

describe("the README's path of one write", () => {
  it('names at most 6 files, each of which exists', () => {
    const readme = read('README.md');
    const picture = section(readme, 'The path of one write');
    const files = [...picture.matchAll(/^ {2}((?:backend|cdc|frontend)\/\S+\.ts)\b/gm)].map(
      (m) => m[1] ?? '',
    );
    expect(files.length).toBeGreaterThan(3);
    expect(files.length).toBeLessThanOrEqual(6);
    for (const file of files) expect(existsSync(`${root}${file}`), file).toBe(true);
  });
});

describe('paths named by the docs', () => {
  /** Built or generated on demand, so absent from a fresh clone. */
  const GENERATED = new Set(['frontend/dist']);
  const REPO_PATH =
    /(?<![\w./@-])(?:backend|cdc|db|frontend|bench|scripts|deploy|patches|docs)\/[\w./-]*[\w]/g;

  for (const file of [
    'README.md',
    'docs/API.md',
    'docs/ELECTRIC-PROTOCOL.md',
    'docs/benchmarks.md',
    'cdc/README.md',
    'frontend/src/lib/sync/README.md',
  ]) {
    it(`exist for every repository path ${file} names`, () => {
      const named = [...new Set([...read(file).matchAll(REPO_PATH)].map((m) => m[0]))];
      expect(named.length).toBeGreaterThan(0);
      const missing = named.filter((path) => !GENERATED.has(path) && !existsSync(`${root}${path}`));
      expect(missing).toEqual([]);
    });
  }
});

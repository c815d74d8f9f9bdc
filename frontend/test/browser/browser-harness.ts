/**
 * The web app as people use it: the production build served by the real API (with the CDC
 * worker, on a throwaway PostgreSQL), driven in Debian's Chromium through playwright-core.
 * One browser context is one device; pages of one context are tabs of that device.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '@sync/backend/api-client';
import { type ApiServer, startApiServer } from '@sync/backend/server';
import { startCdcWorker } from '@sync/cdc/worker';
import type { EmbeddedCluster } from '@sync/db/embedded-postgres';
import { startTestDatabase } from '@sync/db/testing/database';
import pino from 'pino';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { WEB_APP_DIST } from '../../../scripts/web-app-build.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LAUNCH_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface AppStack {
  url: string;
  cluster: EmbeddedCluster;
  api: ApiServer;
  client: ApiClient;
  browser: Browser;
  /** A new device: its own cookies, IndexedDB, service worker and connectivity. */
  device(): Promise<Device>;
  stop(): Promise<void>;
}

export interface Device {
  context: BrowserContext;
  /** The first tab. */
  page: Page;
  /** Another tab of the same device. */
  tab(): Promise<Page>;
  /** Uncaught exceptions and `console.error` calls of every tab of this device. */
  consoleErrors: string[];
}

/**
 * Network failures the browser itself logs ("Failed to load resource: ... 409", or
 * net::ERR_INTERNET_DISCONNECTED while offline) are the HTTP answers the tests provoke, not
 * errors of the app; everything else logged as an error counts.
 */
const BROWSER_NETWORK_LOG = /^Failed to load resource/;

function watchConsole(page: Page, errors: string[]): void {
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    if (message.type() === 'error' && !BROWSER_NETWORK_LOG.test(message.text())) errors.push(message.text());
  });
  page.on('pageerror', (error) =>
    errors.push(`uncaught: ${error.name}: ${error.message}${error.stack ? `\n${error.stack}` : ''}`),
  );
}

/** `durable`: PostgreSQL with its default, durable settings (the benchmarks), else the tests' fast mode. */
export async function startAppStack(options: { durable?: boolean } = {}): Promise<AppStack> {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
  const cluster = await startTestDatabase({ fast: !options.durable });
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const worker = startCdcWorker({ databaseUrl: cluster.url, logger });
  // served the way `npm start` serves it, with the product's Content-Security-Policy
  const api = await startApiServer({ databaseUrl: cluster.url, logger, webRoot: WEB_APP_DIST });
  await worker.streaming();
  const profiles = await mkdtemp(join(tmpdir(), 'sync-browser-'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_FLAGS });
  const contexts: BrowserContext[] = [];
  return {
    url: api.url,
    cluster,
    api,
    client: new ApiClient(api.url),
    browser,
    async device() {
      const context = await browser.newContext({ baseURL: api.url, viewport: { width: 1280, height: 800 } });
      contexts.push(context);
      const consoleErrors: string[] = [];
      const page = await context.newPage();
      watchConsole(page, consoleErrors);
      return {
        context,
        page,
        consoleErrors,
        async tab() {
          const tab = await context.newPage();
          watchConsole(tab, consoleErrors);
          return tab;
        },
      };
    },
    async stop() {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close().catch(() => {});
      await worker.stop();
      await api.close();
      await cluster.destroy();
      await rm(profiles, { recursive: true, force: true });
    },
  };
}

let accounts = 0;
export function uniqueAccount(label = 'person') {
  accounts += 1;
  const suffix = `${Date.now().toString(36)}${accounts}`;
  return {
    name: `${label} ${accounts}`,
    email: `${label}-${suffix}@example.com`,
    password: 'correct-horse-battery',
  };
}

/** Signs up through the sign-up screen and lands on the app. */
export async function signUp(page: Page, account: { name: string; email: string; password: string }) {
  await page.goto('/sign-up');
  await page.getByLabel('Name').fill(account.name);
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL((url) => url.pathname !== '/sign-up');
}

export async function signIn(page: Page, account: { email: string; password: string }) {
  await page.goto('/sign-in');
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** From the first-organization screen (or the `New organization` dialog) to `/o/{slug}`. */
export async function createOrganization(page: Page, name: string, slug: string) {
  await page.getByLabel('Slug').waitFor();
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Slug').fill(slug);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(`**/o/${slug}`);
}

/** A person with an organization, signed in on `device`, on the organization's pages. */
export async function personWithOrganization(device: Device, slug: string) {
  const account = uniqueAccount();
  await signUp(device.page, account);
  await createOrganization(device.page, `Team ${slug}`, slug);
  return account;
}

export const pageList = (page: Page) => page.getByRole('list', { name: 'Pages' });
const exactly = (text: string) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/** The listitem of the page titled exactly `title` (its text is the title; the mark has none). */
export const pageItem = (page: Page, title: string) =>
  pageList(page)
    .getByRole('listitem')
    .filter({ hasText: exactly(title) });
/** The `data-sync-status` of the page titled `title`. */
export const syncStatusOf = (page: Page, title: string) =>
  pageItem(page, title).locator('[data-sync-status]').getAttribute('data-sync-status', { timeout: 2_000 });

export async function createPage(page: Page, title: string, content = '') {
  await page.getByRole('button', { name: 'New page' }).click();
  await page.getByLabel('Title').fill(title);
  await page.getByLabel('Content').fill(content);
  await page.getByRole('button', { name: 'Save' }).click();
}

/** Two devices of one person, both on `/o/{slug}`. */
export async function twoDevices(stack: AppStack, slug: string) {
  const a = await stack.device();
  const b = await stack.device();
  const account = await personWithOrganization(a, slug);
  await signIn(b.page, account);
  await b.page.waitForURL(`**/o/${slug}`);
  return { a, b, account };
}

/** A bearer token of `account`, for reading the server's state behind the app's back. */
export async function tokenOf(
  stack: AppStack,
  account: { email: string; password: string },
): Promise<string> {
  const session = await stack.client.request('POST', '/api/auth/sign-in', { body: account });
  return session.body.token;
}

/** The live pages on the server, by title. */
export async function serverPages(
  stack: AppStack,
  token: string,
  slug: string,
): Promise<Map<string, string>> {
  const list = await stack.client.request('GET', `/api/organizations/${slug}/pages?limit=500`, { token });
  return new Map(
    list.body.items.map((page: { title: string; content: string }) => [page.title, page.content]),
  );
}

/** Every activity of the organization (oldest first). */
export async function serverActivities(stack: AppStack, token: string, slug: string): Promise<any[]> {
  const items: any[] = [];
  let after: string | null = null;
  do {
    const query: string = after ? `&after=${encodeURIComponent(after)}` : '';
    const page = await stack.client.request(
      'GET',
      `/api/organizations/${slug}/activities?limit=500${query}`,
      { token },
    );
    items.push(...page.body.items);
    after = page.body.nextCursor;
  } while (after);
  return items;
}

/** The titles the `Pages` list shows, in order. */
export async function listedTitles(page: Page): Promise<string[]> {
  return pageList(page).locator('.page-title').allTextContents();
}

/** Waits until the service worker controls the page, so a reload works offline. */
export async function appShellCached(page: Page): Promise<void> {
  await page.waitForFunction(() => navigator.serviceWorker?.controller !== null, undefined, {
    timeout: 20_000,
  });
}

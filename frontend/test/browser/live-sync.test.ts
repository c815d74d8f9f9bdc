import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  createPage,
  type Device,
  listedTitles,
  pageItem,
  startAppStack,
  syncStatusOf,
  twoDevices,
} from './browser-harness.ts';

const SCREENSHOT = fileURLToPath(new URL('../../../docs/web-app.png', import.meta.url));

describe('two devices of one person, live', () => {
  let stack: AppStack;
  let a: Device;
  let b: Device;

  beforeAll(async () => {
    stack = await startAppStack();
    ({ a, b } = await twoDevices(stack, 'live-team'));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('shows a page created on device A on device B without reload, and A sees it confirmed', async () => {
    await createPage(a.page, 'Launch plan', 'Ship it on Monday');
    // optimistic: the item is there before the server answers, then confirmed by the stream
    await pageItem(a.page, 'Launch plan').waitFor();
    await expect.poll(() => syncStatusOf(a.page, 'Launch plan'), { timeout: 10_000 }).toBe('confirmed');
    await pageItem(b.page, 'Launch plan').waitFor({ timeout: 10_000 });
    expect(await syncStatusOf(b.page, 'Launch plan')).toBe('confirmed');
  });

  it('passes through pending or sent before confirmed', async () => {
    const seen = a.page.evaluate(
      () =>
        new Promise<string[]>((resolve) => {
          const statuses: string[] = [];
          const observer = new MutationObserver(() => {
            const item = [...document.querySelectorAll('[aria-label="Pages"] li')].find((li) =>
              li.textContent?.startsWith('Status walk'),
            );
            const status = item?.querySelector('[data-sync-status]')?.getAttribute('data-sync-status');
            if (status && statuses.at(-1) !== status) statuses.push(status);
            if (status === 'confirmed') {
              observer.disconnect();
              resolve(statuses);
            }
          });
          observer.observe(document.body, { subtree: true, childList: true, attributes: true });
        }),
    );
    await createPage(a.page, 'Status walk');
    const statuses = await seen;
    expect(statuses.at(-1)).toBe('confirmed');
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.slice(0, -1).every((status) => status === 'pending' || status === 'sent')).toBe(true);
  });

  it('shows an edit and a delete from device B on device A', async () => {
    await pageItem(b.page, 'Launch plan').click();
    await b.page.getByLabel('Title').fill('Launch plan v2');
    await b.page.getByRole('button', { name: 'Save' }).click();
    await pageItem(a.page, 'Launch plan v2').waitFor({ timeout: 10_000 });

    await pageItem(b.page, 'Status walk').click();
    await b.page.getByRole('button', { name: 'Delete' }).click();
    await b.page.getByRole('status').filter({ hasText: 'Deleted' }).waitFor();
    await expect.poll(() => listedTitles(a.page), { timeout: 10_000 }).toEqual(['Launch plan v2']);
  });

  it('adds an attachment to a page, seen live on the other device', async () => {
    await pageItem(a.page, 'Launch plan v2').click();
    await a.page.getByLabel('File name').fill('roadmap.pdf');
    await a.page.getByLabel('URL').fill('https://example.com/roadmap.pdf');
    await a.page.getByRole('button', { name: 'Add attachment' }).click();
    const mine = a.page
      .getByRole('list', { name: 'Attachments' })
      .getByRole('listitem')
      .filter({ hasText: 'roadmap.pdf' });
    await expect
      .poll(() => mine.locator('[data-sync-status]').getAttribute('data-sync-status'), { timeout: 10_000 })
      .toBe('confirmed');
    await pageItem(b.page, 'Launch plan v2').click();
    await b.page
      .getByRole('list', { name: 'Attachments' })
      .getByRole('listitem')
      .filter({ hasText: 'roadmap.pdf' })
      .waitFor({ timeout: 10_000 });
  });

  it('keeps the counts and the activity feed live', async () => {
    const counts = b.page.getByRole('region', { name: 'Counts' });
    await expect
      .poll(() => counts.textContent(), { timeout: 10_000 })
      .toMatch(/Pages\s*1(?!\d).*Attachments\s*1(?!\d)/);
    const activity = b.page.getByRole('region', { name: 'Activity' });
    await createPage(a.page, 'Retro notes');
    await expect.poll(() => counts.textContent(), { timeout: 10_000 }).toMatch(/Pages\s*2(?!\d)/);
    const newest = activity.getByRole('listitem').first();
    await expect.poll(() => newest.textContent(), { timeout: 10_000 }).toMatch(/created a page/);
    await activity.getByRole('combobox', { name: 'Action' }).selectOption('delete');
    await expect
      .poll(() => activity.getByRole('listitem').allTextContents())
      .toEqual([expect.stringMatching(/deleted a page/)]);
  });

  it('lists this device’s transactions with their activities in the debug view', async () => {
    await a.page.getByRole('link', { name: 'Transactions' }).click();
    const table = a.page.getByRole('table', { name: 'Transactions' });
    await table.waitFor();
    const headers = await table.getByRole('columnheader').allTextContents();
    expect(headers).toEqual(['Transaction', 'Entity', 'Action', 'Status', 'Created']);
    const row = table
      .getByRole('row')
      .filter({ has: a.page.getByRole('cell', { name: 'create', exact: true }) })
      .first();
    await row.getByRole('button').first().click();
    await table
      .getByText(/page\.created|attachment\.created/)
      .first()
      .waitFor({ timeout: 10_000 });
  });

  it('takes the README screenshot (written when missing or with UPDATE_SCREENSHOT=1)', async () => {
    const { page } = a;
    await page.getByRole('link', { name: 'Pages', exact: true }).click();
    await pageItem(page, 'Launch plan v2').click();
    await page
      .getByLabel('Content')
      .fill('Ship it on Monday.\n\n- freeze on Friday\n- demo at 10:00\n- retro after lunch');
    await page.getByRole('button', { name: 'Save' }).click();
    const newest = page.getByRole('region', { name: 'Activity' }).getByRole('listitem').first();
    await expect.poll(() => newest.textContent(), { timeout: 10_000 }).toMatch(/edited a page \(content\)/);
    await expect.poll(() => syncStatusOf(page, 'Launch plan v2'), { timeout: 10_000 }).toBe('confirmed');
    await page.getByLabel('Content').blur();
    const image = await page.screenshot({ type: 'png' });
    if (process.env.UPDATE_SCREENSHOT === '1' || !existsSync(SCREENSHOT)) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      writeFileSync(SCREENSHOT, image);
    }
    expect(image.length).toBeGreaterThan(10_000);
  });

  it('logs no console errors on either device', () => {
    expect(a.consoleErrors).toEqual([]);
    expect(b.consoleErrors).toEqual([]);
  });
});

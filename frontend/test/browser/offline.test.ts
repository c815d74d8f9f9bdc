import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  appShellCached,
  createPage,
  type Device,
  listedTitles,
  pageItem,
  serverActivities,
  serverPages,
  startAppStack,
  syncStatusOf,
  tokenOf,
  twoDevices,
} from './browser-harness.ts';

const SLUG = 'offline-team';

describe('working offline', () => {
  let stack: AppStack;
  let a: Device;
  let b: Device;
  let token: string;

  beforeAll(async () => {
    stack = await startAppStack();
    const devices = await twoDevices(stack, SLUG);
    ({ a, b } = devices);
    token = await tokenOf(stack, devices.account);
  });
  afterAll(async () => {
    await stack?.stop();
  });
  // a failed test must not leave the device offline for the next one
  afterEach(async () => {
    await a?.context.setOffline(false);
  });

  const banner = (device: Device) => device.page.getByRole('status').filter({ hasText: /^Offline ·/ });

  it('queues 20 changes, keeps them over an offline reload, and replays each once in order', async () => {
    const { page } = a;
    for (const title of ['Keep 1', 'Keep 2', 'Drop 1', 'Drop 2']) await createPage(page, title, 'online');
    for (const title of ['Keep 1', 'Keep 2', 'Drop 1', 'Drop 2'])
      await expect.poll(() => syncStatusOf(page, title), { timeout: 30_000 }).toBe('confirmed');
    const before = (await serverActivities(stack, token, SLUG)).length;
    const counts = page.getByRole('region', { name: 'Counts' });
    await expect.poll(() => counts.textContent(), { timeout: 30_000 }).toMatch(/Pages\s*4(?!\d)/);
    await appShellCached(page);

    await a.context.setOffline(true);
    await banner(a).waitFor();
    // 20 changes: 10 creates, 6 edits (two of pages made offline), 4 deletes (one made offline)
    for (let i = 1; i <= 10; i++) await createPage(page, `Offline ${i}`, `written offline ${i}`);
    const edits: [string, string][] = [
      ['Keep 1', 'Keep 1 edited'],
      ['Keep 2', 'Keep 2 edited'],
      ['Offline 1', 'Offline 1 edited'],
      ['Offline 2', 'Offline 2 edited'],
      ['Keep 1 edited', 'Keep 1 edited twice'],
      ['Offline 1 edited', 'Offline 1 edited twice'],
    ];
    for (const [from, to] of edits) {
      await pageItem(page, from).click();
      await page.getByLabel('Title').fill(to);
      await page.getByRole('button', { name: 'Save' }).click();
      await pageItem(page, to).waitFor();
    }
    for (const title of ['Drop 1', 'Drop 2', 'Offline 3', 'Offline 4']) {
      await pageItem(page, title).click();
      await page.getByRole('button', { name: 'Delete' }).click();
      await pageItem(page, title).waitFor({ state: 'detached' });
    }
    await expect.poll(() => banner(a).textContent()).toBe('Offline · 20 changes queued');
    const expected = [
      'Keep 1 edited twice',
      'Keep 2 edited',
      'Offline 1 edited twice',
      'Offline 2 edited',
      ...[5, 6, 7, 8, 9, 10].map((i) => `Offline ${i}`),
    ].sort();
    expect((await listedTitles(page)).sort()).toEqual(expected);
    expect(await syncStatusOf(page, 'Offline 5')).toBe('pending');

    // a reload while offline: the service worker serves the app, IndexedDB the queue and rows
    await page.addInitScript(() => {
      // every text the banner shows from the first render on
      const shown: string[] = [];
      Reflect.set(globalThis, 'bannerTexts', shown);
      new MutationObserver(() => {
        for (const status of document.querySelectorAll('[role="status"]')) {
          const text = status.textContent ?? '';
          if (text.startsWith('Offline') && shown.at(-1) !== text) shown.push(text);
        }
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.reload();
    await expect.poll(() => banner(a).textContent()).toBe('Offline · 20 changes queued');
    // never a count before the queue is read (it showed "0 changes queued" first)
    const bannerTexts: string[] = await page.evaluate(() => Reflect.get(globalThis, 'bannerTexts'));
    expect(bannerTexts).toEqual(['Offline · 20 changes queued']);
    // the last known totals, not blanks, until the stream can send new ones
    expect(await counts.textContent()).toMatch(/Pages\s*4(?!\d)/);
    await expect.poll(async () => (await listedTitles(page)).sort()).toEqual(expected);

    await a.context.setOffline(false);
    for (const title of expected)
      await expect.poll(() => syncStatusOf(page, title), { timeout: 20_000 }).toBe('confirmed');
    await banner(a).waitFor({ state: 'detached' });
    expect([...(await serverPages(stack, token, SLUG)).keys()].sort()).toEqual(expected);
    await expect.poll(async () => (await listedTitles(b.page)).sort(), { timeout: 30_000 }).toEqual(expected);

    // once each: 20 new transactions, no id twice
    await expect
      .poll(async () => (await serverActivities(stack, token, SLUG)).length - before, { timeout: 30_000 })
      .toBe(20);
    const txIds = (await serverActivities(stack, token, SLUG)).map((activity) => activity.transactionId);
    expect(new Set(txIds).size).toBe(txIds.length);
  });

  it('queues and sends a change made in either of two tabs exactly once', async () => {
    const second = await a.tab();
    await second.goto(`/o/${SLUG}`);
    const sent: string[] = [];
    for (const tab of [a.page, second]) {
      tab.on('request', (request) => {
        const txId = request.headers()['x-transaction-id'];
        if (txId && request.method() !== 'GET') sent.push(txId);
      });
    }
    await createPage(a.page, 'From tab one');
    await createPage(second, 'From tab two');
    for (const tab of [a.page, second]) {
      await expect.poll(() => syncStatusOf(tab, 'From tab one'), { timeout: 30_000 }).toBe('confirmed');
      await expect.poll(() => syncStatusOf(tab, 'From tab two'), { timeout: 30_000 }).toBe('confirmed');
    }
    expect(sent).toHaveLength(2);
    expect(new Set(sent).size).toBe(2);
    const activities = await serverActivities(stack, token, SLUG);
    for (const txId of sent)
      expect(activities.filter((activity) => activity.transactionId === txId)).toHaveLength(1);
    await second.close();
  });

  it('logs no console errors on either device', () => {
    expect(a.consoleErrors).toEqual([]);
    expect(b.consoleErrors).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  createPage,
  type Device,
  pageItem,
  serverPages,
  startAppStack,
  syncStatusOf,
  tokenOf,
  twoDevices,
} from './browser-harness.ts';

/**
 * Two devices open the same page and both edit it; B saves first, so A's later save is made
 * against a version that is gone: A gets the `Conflict` dialog and decides.
 */
describe('two devices editing the same page', () => {
  let stack: AppStack;
  let a: Device;
  let b: Device;
  let token: string;

  beforeAll(async () => {
    stack = await startAppStack();
    const devices = await twoDevices(stack, 'conflict-team');
    ({ a, b } = devices);
    token = await tokenOf(stack, devices.account);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function editBothThenSaveBFirst(title: string) {
    await createPage(a.page, title, 'first draft');
    await expect.poll(() => syncStatusOf(a.page, title), { timeout: 10_000 }).toBe('confirmed');
    await pageItem(b.page, title).click({ timeout: 10_000 });
    // A types without saving while B saves its edit
    await a.page.getByLabel('Content').fill('words from A');
    await b.page.getByLabel('Content').fill('words from B');
    await b.page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => syncStatusOf(b.page, title), { timeout: 10_000 }).toBe('confirmed');
    // A has received B's change (so A's client knows the newer version) while A's draft still
    // rests on the older one: the save must be checked against the version A started from
    const newestOnA = a.page.getByRole('region', { name: 'Activity' }).getByRole('listitem').first();
    await expect
      .poll(() => newestOnA.textContent(), { timeout: 10_000 })
      .toMatch(/^Another device edited a page/);
    await a.page.getByRole('button', { name: 'Save' }).click();
    const dialog = a.page.getByRole('dialog', { name: 'Conflict' });
    await dialog.waitFor({ timeout: 10_000 });
    expect(await dialog.getByRole('region', { name: 'Your version' }).textContent()).toContain(
      'words from A',
    );
    expect(await dialog.getByRole('region', { name: 'Their version' }).textContent()).toContain(
      'words from B',
    );
    expect(await syncStatusOf(a.page, title)).toBe('conflict');
    return dialog;
  }

  const contentOn = (device: Device) => device.page.getByLabel('Content').inputValue();

  it('Keep mine: both devices end with A’s text', async () => {
    const dialog = await editBothThenSaveBFirst('Keep mine doc');
    await dialog.getByRole('button', { name: 'Keep mine' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await expect.poll(() => syncStatusOf(a.page, 'Keep mine doc'), { timeout: 10_000 }).toBe('confirmed');
    await expect.poll(() => contentOn(a), { timeout: 10_000 }).toBe('words from A');
    await expect.poll(() => contentOn(b), { timeout: 10_000 }).toBe('words from A');
    expect((await serverPages(stack, token, 'conflict-team')).get('Keep mine doc')).toBe('words from A');
  });

  it('Take theirs: both devices end with B’s text', async () => {
    const dialog = await editBothThenSaveBFirst('Take theirs doc');
    await dialog.getByRole('button', { name: 'Take theirs' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await expect.poll(() => syncStatusOf(a.page, 'Take theirs doc'), { timeout: 10_000 }).toBe('confirmed');
    await expect.poll(() => contentOn(a), { timeout: 10_000 }).toBe('words from B');
    await expect.poll(() => contentOn(b), { timeout: 10_000 }).toBe('words from B');
    expect((await serverPages(stack, token, 'conflict-team')).get('Take theirs doc')).toBe('words from B');
  });

  it('closes with Escape and reopens from the Resolve notice', async () => {
    await editBothThenSaveBFirst('Escape doc');
    await a.page.keyboard.press('Escape');
    const dialog = a.page.getByRole('dialog', { name: 'Conflict' });
    await dialog.waitFor({ state: 'hidden' });
    expect(await syncStatusOf(a.page, 'Escape doc')).toBe('conflict');
    await a.page.getByRole('button', { name: 'Resolve' }).click();
    await dialog.getByRole('button', { name: 'Take theirs' }).click();
    await expect.poll(() => syncStatusOf(a.page, 'Escape doc'), { timeout: 10_000 }).toBe('confirmed');
  });

  it('logs no console errors on either device', () => {
    expect(a.consoleErrors).toEqual([]);
    expect(b.consoleErrors).toEqual([]);
  });
});

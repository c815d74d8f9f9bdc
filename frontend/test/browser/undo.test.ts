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
 * Undo is the server's `POST .../transactions/{txId}/undo`, queued by the app as a transaction
 * of its own; two devices of one person watch it arrive.
 */
describe('undo', () => {
  let stack: AppStack;
  let a: Device;
  let b: Device;
  let token: string;

  beforeAll(async () => {
    stack = await startAppStack();
    const devices = await twoDevices(stack, 'undo-team');
    ({ a, b } = devices);
    token = await tokenOf(stack, devices.account);
  });

  /** The newest line of a device's activity feed. */
  const newestActivity = (device: Device) =>
    device.page.getByRole('region', { name: 'Activity' }).getByRole('listitem').first();
  afterAll(async () => {
    await stack?.stop();
  });

  it('brings a deleted page back from the notice shown after the delete, on both devices', async () => {
    await createPage(a.page, 'Oops');
    await expect.poll(() => syncStatusOf(a.page, 'Oops'), { timeout: 10_000 }).toBe('confirmed');
    await a.page.getByRole('button', { name: 'Delete' }).click();
    await pageItem(a.page, 'Oops').waitFor({ state: 'detached' });
    await a.page
      .getByRole('status')
      .filter({ hasText: 'Deleted' })
      .getByRole('button', { name: 'Undo' })
      .click();
    await expect.poll(() => syncStatusOf(a.page, 'Oops'), { timeout: 10_000 }).toBe('confirmed');
    expect((await serverPages(stack, token, 'undo-team')).has('Oops')).toBe(true);
    await pageItem(b.page, 'Oops').waitFor({ timeout: 10_000 });
    await expect
      .poll(() => newestActivity(a).textContent(), { timeout: 10_000 })
      .toMatch(/^This device undid "deleted a page"/);
    await expect
      .poll(() => newestActivity(b).textContent(), { timeout: 10_000 })
      .toMatch(/^Another device undid "deleted a page"/);
  });

  it('reverts one of this device’s confirmed edits from the debug view', async () => {
    await createPage(a.page, 'Before');
    await expect.poll(() => syncStatusOf(a.page, 'Before'), { timeout: 10_000 }).toBe('confirmed');
    await a.page.getByLabel('Title').fill('After');
    await a.page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => syncStatusOf(a.page, 'After'), { timeout: 10_000 }).toBe('confirmed');
    await a.page.getByRole('link', { name: 'Transactions', exact: true }).click();
    const edit = a.page
      .getByRole('table', { name: 'Transactions' })
      .getByRole('row')
      .filter({ has: a.page.getByRole('cell', { name: 'update', exact: true }) })
      .first();
    await edit.getByRole('button', { name: 'Undo' }).click();
    await a.page.getByRole('link', { name: 'Pages', exact: true }).click();
    await expect.poll(() => syncStatusOf(a.page, 'Before'), { timeout: 10_000 }).toBe('confirmed');
    expect((await serverPages(stack, token, 'undo-team')).has('Before')).toBe(true);
    await expect
      .poll(() => newestActivity(a).textContent(), { timeout: 10_000 })
      .toMatch(/^This device undid "edited a page \(title\)"/);
    await pageItem(b.page, 'Before').waitFor({ timeout: 10_000 });
  });

  it('opens the conflict dialog for an undo of a page changed since; Keep mine applies the undo', async () => {
    await createPage(a.page, 'Draft');
    await expect.poll(() => syncStatusOf(a.page, 'Draft'), { timeout: 10_000 }).toBe('confirmed');
    await a.page.getByLabel('Title').fill('Final');
    await a.page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => syncStatusOf(a.page, 'Final'), { timeout: 10_000 }).toBe('confirmed');
    // the other device writes on top of that edit before the undo
    await pageItem(b.page, 'Final').click({ timeout: 10_000 });
    await b.page.getByLabel('Content').fill('notes from B');
    await b.page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => syncStatusOf(b.page, 'Final'), { timeout: 10_000 }).toBe('confirmed');

    await a.page.getByRole('link', { name: 'Transactions', exact: true }).click();
    await a.page
      .getByRole('table', { name: 'Transactions' })
      .getByRole('row')
      .filter({ has: a.page.getByRole('cell', { name: 'update', exact: true }) })
      .filter({ has: a.page.getByRole('button', { name: 'Undo' }) })
      .first()
      .getByRole('button', { name: 'Undo' })
      .click();
    const dialog = a.page.getByRole('dialog', { name: 'Conflict' });
    await dialog.waitFor({ timeout: 10_000 });
    expect(await dialog.getByRole('region', { name: 'Your version' }).textContent()).toContain('Draft');
    expect(await dialog.getByRole('region', { name: 'Their version' }).textContent()).toContain(
      'notes from B',
    );
    await dialog.getByRole('button', { name: 'Keep mine' }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 10_000 });
    await a.page.getByRole('link', { name: 'Pages', exact: true }).click();
    await expect.poll(() => syncStatusOf(a.page, 'Draft'), { timeout: 10_000 }).toBe('confirmed');
    await pageItem(b.page, 'Draft').waitFor({ timeout: 10_000 });
    const pages = await serverPages(stack, token, 'undo-team');
    expect(pages.get('Draft')).toBe('notes from B');
  });

  it('logs no console errors', () => {
    expect(a.consoleErrors).toEqual([]);
    expect(b.consoleErrors).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  createOrganization,
  type Device,
  signIn,
  signUp,
  startAppStack,
  uniqueAccount,
} from './browser-harness.ts';

describe('signing up, signing in and organizations', () => {
  let stack: AppStack;
  let device: Device;
  const account = uniqueAccount('alice');

  beforeAll(async () => {
    stack = await startAppStack();
    device = await stack.device();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('shows the sign-in screen at / when signed out', async () => {
    const { page } = device;
    const askedWhoIsSignedIn: number[] = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname === '/api/me') askedWhoIsSignedIn.push(response.status());
    });
    await page.goto('/');
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    // a device that never signed in does not ask (a 401 the browser logs as an error)
    expect(askedWhoIsSignedIn).toEqual([]);
    await page.getByRole('link', { name: 'Create account' }).click();
    await page.waitForURL('**/sign-up');
    expect(device.consoleErrors).toEqual([]);
  });

  it('signs up, creates the first organization and lands on its pages', async () => {
    const { page } = device;
    await signUp(page, account);
    await page.getByText('Create an organization').waitFor();
    await createOrganization(page, 'Acme Research', 'acme-research');
    await page.getByRole('combobox', { name: 'Organization' }).waitFor();
    expect(await page.getByRole('combobox', { name: 'Organization' }).inputValue()).toBe('acme-research');
    await page.getByRole('list', { name: 'Pages' }).or(page.getByText('No pages yet')).first().waitFor();
  });

  it('creates a second organization from the New organization dialog and switches with the picker', async () => {
    const { page } = device;
    await page.getByRole('button', { name: 'New organization' }).click();
    const dialog = page.getByRole('dialog', { name: 'New organization' });
    await dialog.getByLabel('Name').fill('Beta Lab');
    expect(await dialog.getByLabel('Slug').inputValue()).toBe('beta-lab');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL('**/o/beta-lab');
    await page.getByRole('combobox', { name: 'Organization' }).selectOption('acme-research');
    await page.waitForURL('**/o/acme-research');
  });

  it('answers a taken slug with the server message in the form', async () => {
    const { page } = device;
    await page.getByRole('button', { name: 'New organization' }).click();
    const dialog = page.getByRole('dialog', { name: 'New organization' });
    await dialog.getByLabel('Name').fill('Acme again');
    await dialog.getByLabel('Slug').fill('acme-research');
    await dialog.getByRole('button', { name: 'Create' }).click();
    await dialog.getByRole('alert').waitFor();
    expect(await dialog.getByRole('alert').textContent()).toMatch(/taken/i);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
  });

  it('signs out, refuses a wrong password, and signs in again to the first organization', async () => {
    const { page } = device;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/sign-in');
    await signIn(page, { email: account.email, password: 'not-the-password' });
    await page.getByRole('alert').waitFor();
    await signIn(page, account);
    await page.waitForURL('**/o/acme-research');
  });

  it('works from the keyboard alone: Tab between fields, Enter submits', async () => {
    const { page } = device;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/sign-in');
    await page.getByLabel('Email').focus();
    await page.keyboard.type(account.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(account.password);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/o/acme-research');
    await page.getByRole('button', { name: 'New page' }).focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Tab');
    expect(
      await page.evaluate(
        () =>
          document.activeElement?.getAttribute('aria-label') ??
          document.activeElement?.closest('label')?.textContent,
      ),
    ).toMatch(/^Title/);
    await page.keyboard.type('Typed page');
    await page.keyboard.press('Enter');
    await page
      .getByRole('list', { name: 'Pages' })
      .getByRole('listitem')
      .filter({ hasText: /^Typed page$/ })
      .waitFor();
  });

  it('is readable at 375 px: nothing wider than the screen', async () => {
    const { page } = device;
    // the previous test's page is still being saved: reloading mid-request is not this test's subject
    await page
      .getByRole('list', { name: 'Pages' })
      .getByRole('listitem')
      .filter({ hasText: /^Typed page$/ })
      .locator('[data-sync-status="confirmed"]')
      .waitFor({ timeout: 30_000 });
    await page.setViewportSize({ width: 375, height: 800 });
    const screens: [string, () => Promise<void>][] = [
      ['/o/acme-research', () => page.getByRole('list', { name: 'Pages' }).waitFor()],
      ['/o/acme-research/transactions', () => page.getByRole('table', { name: 'Transactions' }).waitFor()],
      ['/sign-up', () => page.getByRole('button', { name: 'Create account' }).waitFor()],
    ];
    for (const [path, shown] of screens) {
      await page.goto(path);
      await shown();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    }
    expect(device.consoleErrors).toEqual([]);
  });
});

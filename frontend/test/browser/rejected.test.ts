import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  createPage,
  type Device,
  listedTitles,
  pageItem,
  personWithOrganization,
  serverPages,
  startAppStack,
  syncStatusOf,
  tokenOf,
} from './browser-harness.ts';

describe('a write the server rejects for good', () => {
  let stack: AppStack;
  let a: Device;
  let token: string;

  beforeAll(async () => {
    stack = await startAppStack();
    a = await stack.device();
    token = await tokenOf(stack, await personWithOrganization(a, 'strict-team'));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('rolls back an edit and names the page and the reason in an alert', async () => {
    await createPage(a.page, 'Plan', 'the plan');
    await expect.poll(() => syncStatusOf(a.page, 'Plan'), { timeout: 10_000 }).toBe('confirmed');
    await a.page.getByLabel('Title').fill('P'.repeat(501));
    await a.page.getByRole('button', { name: 'Save' }).click();
    const alert = a.page.getByRole('alert').filter({ hasText: 'Could not save' });
    await alert.waitFor({ timeout: 10_000 });
    expect(await alert.textContent()).toMatch(/^Could not save "Plan": title.*500/);
    await expect.poll(() => listedTitles(a.page)).toEqual(['Plan']);
    await expect.poll(() => a.page.getByLabel('Title').inputValue()).toBe('Plan');
    expect([...(await serverPages(stack, token, 'strict-team')).keys()]).toEqual(['Plan']);
    await alert.getByRole('button', { name: 'Dismiss' }).click();
    await alert.waitFor({ state: 'hidden' });
  });

  it('rolls back a create and keeps later writes flowing', async () => {
    await createPage(a.page, '   ');
    const alert = a.page.getByRole('alert').filter({ hasText: 'Could not save' });
    await alert.waitFor({ timeout: 10_000 });
    await expect.poll(() => listedTitles(a.page)).toEqual(['Plan']);
    await createPage(a.page, 'Next idea');
    await expect.poll(() => syncStatusOf(a.page, 'Next idea'), { timeout: 10_000 }).toBe('confirmed');
    await pageItem(a.page, 'Next idea').waitFor();
  });

  it('logs no console errors', () => {
    expect(a.consoleErrors).toEqual([]);
  });
});

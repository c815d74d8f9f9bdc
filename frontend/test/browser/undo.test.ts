import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AppStack,
  createPage,
  type Device,
  pageItem,
  personWithOrganization,
  serverPages,
  startAppStack,
  syncStatusOf,
  tokenOf,
} from './browser-harness.ts';

/** Undo is the server's `POST .../transactions/{txId}/undo`; these tests wait for that route. */
describe('undo', () => {
  let stack: AppStack;
  let a: Device;
  let token: string;
  let serverUndoes = false;

  beforeAll(async () => {
    stack = await startAppStack();
    a = await stack.device();
    token = await tokenOf(stack, await personWithOrganization(a, 'undo-team'));
    const document = await stack.client.request('GET', '/api/openapi.json');
    serverUndoes = Object.keys(document.body.paths ?? {}).some((path) => path.endsWith('/undo'));
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('brings a deleted page back from the notice shown after the delete', async (context) => {
    if (!serverUndoes) context.skip();
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
  });

  it('reverts one of this device’s confirmed edits from the debug view', async (context) => {
    if (!serverUndoes) context.skip();
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
  });

  it('logs no console errors', () => {
    expect(a.consoleErrors).toEqual([]);
  });
});

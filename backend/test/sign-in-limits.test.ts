import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack, uniqueName } from '../src/testing/api.ts';
import { expectError } from './support/contract.ts';

const WINDOW_MS = 5_000;
const PER_ACCOUNT = 5;
const PER_ADDRESS = 12;

let stack: TestStack;
let defaults: TestStack;

beforeAll(async () => {
  [stack, defaults] = await Promise.all([
    startTestStack({
      config: {
        signInLimits: {
          perAccount: { failures: PER_ACCOUNT, windowMs: WINDOW_MS },
          perAddress: { failures: PER_ADDRESS, windowMs: WINDOW_MS },
        },
      },
    }),
    startTestStack(),
  ]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), defaults?.stop()]);
});

const signIn = (on: TestStack, email: string, password: string) =>
  on.client.request('POST', '/api/auth/sign-in', { body: { email, password } });

async function account(on: TestStack = stack) {
  const email = `${uniqueName('limit')}@example.com`;
  const password = 'the right password';
  await on.client.signUp(email, password);
  return { email, password };
}

describe('failed sign-ins are limited', () => {
  it('answers 429 RATE_LIMITED with Retry-After after 10 wrong passwords in a row (the defaults), even to the right one', async () => {
    const { email, password } = await account(defaults);
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => signIn(defaults, email, `wrong guess ${i}`)),
    );
    const statuses = answers.map((res) => res.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
    const refused = await signIn(defaults, email, password);
    expectError(refused, 429, 'RATE_LIMITED', ['retryAfter']);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.body.retryAfter).toBe(retryAfter);
  });

  it('lets the real user sign in once the short account window has passed', async () => {
    const { email, password } = await account();
    for (let i = 0; i < PER_ACCOUNT; i++) expect((await signIn(stack, email, 'wrong')).status).toBe(401);
    const refused = await signIn(stack, email, password);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(WINDOW_MS / 1000));
    await new Promise((r) => setTimeout(r, retryAfter * 1000 + 200));
    expect((await signIn(stack, email, password)).status).toBe(200);
  });

  it('does not count successful or malformed sign-ins', async () => {
    const { email, password } = await account();
    for (let i = 0; i < PER_ACCOUNT * 3; i++) expect((await signIn(stack, email, password)).status).toBe(200);
    for (let i = 0; i < PER_ACCOUNT * 3; i++) {
      const malformed = await stack.client.request('POST', '/api/auth/sign-in', { body: { email } });
      expect(malformed.status).toBe(400);
    }
    expect((await signIn(stack, email, password)).status).toBe(200);
  });

  it('limits one address guessing across many accounts, each below its own limit', async () => {
    await new Promise((r) => setTimeout(r, WINDOW_MS)); // a fresh address window
    const victims = await Promise.all(Array.from({ length: 4 }, () => account()));
    // 3 failures per account stay under the account limit; 12 in all reach the address limit
    const guesses = await Promise.all(
      victims.flatMap((victim) => [1, 2, 3].map(() => signIn(stack, victim.email, 'wrong'))),
    );
    expect(guesses.map((res) => res.status)).toEqual(Array(PER_ADDRESS).fill(401));
    const fresh = await account();
    const refused = await signIn(stack, fresh.email, fresh.password);
    expectError(refused, 429, 'RATE_LIMITED', ['retryAfter']);
    expect(refused.body.message).toMatch(/address/);
  });
});

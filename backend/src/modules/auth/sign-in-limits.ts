/**
 * Brute-force protection of sign-in. Wrong credentials (401) are counted per account and per
 * client address, each in a fixed window (hono-rate-limiter, in the memory of one API process);
 * successful and malformed attempts are not counted.
 *
 *   attempt ─► address over its limit? ─► 429 RATE_LIMITED + Retry-After
 *           ─► account over its limit? ─► 429 RATE_LIMITED + Retry-After
 *           ─► check the password ─ 401 counts against both ─ 200 counts against neither
 *
 * Over a limit even the right password gets 429, or the check itself would be the guess. The
 * account window is short (a minute by default), so an attacker can keep an account shut only
 * while attacking it, and its owner is in again one window after the attack stops, from any
 * address. The address limit is higher: one address guessing across many accounts.
 */

import { memoized } from '@sync/db/memo';
import type { Context, MiddlewareHandler } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';
import type { AppDeps, AppEnv, FailureLimit } from '../../core/app-env.ts';
import { clientAddress } from '../../core/client-address.ts';
import { AppError, errorResponse } from '../../core/errors.ts';

const WRONG_CREDENTIALS = 401;

async function accountOf(c: Context<AppEnv>): Promise<string> {
  const body: unknown = await c.req.json().catch(() => null);
  const email = body && typeof body === 'object' && 'email' in body ? body.email : null;
  return typeof email === 'string' ? email.trim().toLowerCase() : '';
}

function limiter(
  limit: FailureLimit,
  what: string,
  keyOf: (c: Context<AppEnv>) => string | Promise<string>,
): MiddlewareHandler<AppEnv> {
  return rateLimiter<AppEnv>({
    windowMs: limit.windowMs,
    limit: limit.failures,
    keyGenerator: keyOf,
    standardHeaders: false,
    skipSuccessfulRequests: true,
    requestWasSuccessful: (c) => c.res.status !== WRONG_CREDENTIALS,
    handler: (c) => {
      const resetTime = c.get('rateLimit')?.resetTime;
      const seconds = resetTime ? (resetTime.getTime() - Date.now()) / 1000 : limit.windowMs / 1000;
      // answered, not thrown: a refusal by the account limit must not count against the address
      const refusal = AppError.rateLimited(`Too many failed sign-ins ${what}; try again later`, seconds);
      return errorResponse(c, refusal, () => {});
    },
  });
}

interface SignInLimiters {
  byAddress: MiddlewareHandler<AppEnv>;
  byAccount: MiddlewareHandler<AppEnv>;
}

/** One set of counters per app (an API process, or each server a test starts). */
const limitersOf = new WeakMap<AppDeps, SignInLimiters>();

export const limitFailedSignIns: MiddlewareHandler<AppEnv> = async (c, next) => {
  const deps = c.get('deps');
  const { byAddress, byAccount } = memoized(limitersOf, deps, () => {
    const { perAddress, perAccount } = deps.config.signInLimits;
    return {
      byAddress: limiter(perAddress, 'from this address', clientAddress),
      byAccount: limiter(perAccount, 'for this account', accountOf),
    };
  });
  return byAddress(c, async () => {
    const refused = await byAccount(c, next);
    if (refused instanceof Response) c.res = refused;
  });
};

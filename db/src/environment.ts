/**
 * A process reads its environment once, at its start: each entry point (the API, the CDC worker,
 * `npm start`) declares its variables as one zod schema and parses `process.env` with it, then
 * passes plain settings on. A bad value ends the process before anything starts, with one line
 * naming the variable; no other module reads `process.env`.
 */

import { z } from 'zod';
import { DEFAULT_SLOT_NAME, SLOT_NAME_PATTERN } from './constants.ts';

export class EnvironmentError extends Error {
  override name = 'EnvironmentError';
}

/** An empty variable means the same as an unset one: its default. */
export const unsetWhenEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema);

export const logLevel = (fallback: 'info' | 'warn') =>
  unsetWhenEmpty(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(fallback));

export const optionalText = unsetWhenEmpty(z.string().optional());

export const textOr = (fallback: string) => unsetWhenEmpty(z.string().default(fallback));

export const listenPort = unsetWhenEmpty(
  z.coerce
    .number({ error: 'expected a port number' })
    .int('expected a port number')
    .min(0, 'expected a port number from 0 to 65535')
    .max(65_535, 'expected a port number from 0 to 65535')
    .default(3000),
);

/** The interface to listen on; loopback unless opened on purpose (`0.0.0.0`: all). */
export const listenHost = textOr('127.0.0.1');

/** The CDC worker's replication slot, which the API reports on too. */
export const slotName = unsetWhenEmpty(
  z.string().regex(SLOT_NAME_PATTERN, 'use 1-63 of a-z, 0-9 and _').default(DEFAULT_SLOT_NAME),
);

/** A required variable: unset or empty is an error that says what it is for. */
export const required = (what: string) => unsetWhenEmpty(z.string({ error: `required: ${what}` }));

/** `true` or `false` (unset: false); anything else is a typo, not a silent false. */
export const flag = unsetWhenEmpty(
  z.enum(['true', 'false'], { error: 'expected true or false' }).default('false'),
).transform((value) => value === 'true');

/** Parses the environment with `schema`; every bad variable is named in the error, no value shown. */
export function parseEnvironment<T extends z.ZodType>(
  schema: T,
  environment: Record<string, string | undefined>,
): z.output<T> {
  const result = schema.safeParse(environment);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  throw new EnvironmentError(`invalid environment: ${problems.join('; ')}`);
}

import { describe, expect, it } from 'vitest';
import { singleFlight } from '../src/core/single-flight.ts';

/** A call that stays in flight until `finish` is called. */
function deferred(value: string) {
  let finish: () => void = () => {};
  const promise = new Promise<string>((resolve) => {
    finish = () => resolve(value);
  });
  return { promise, finish };
}

describe('single flight (coalesced log reads)', () => {
  it('lets concurrent identical calls share one run', async () => {
    const flight = singleFlight<string>();
    const first = deferred('a');
    let runs = 0;
    const run = () => {
      runs++;
      return first.promise;
    };
    const answers = [flight('k', run), flight('k', run), flight('k', run)];
    first.finish();
    expect(await Promise.all(answers)).toEqual(['a', 'a', 'a']);
    expect(runs).toBe(1);
  });

  it('never hands a caller woken by a notification a run that started before it', async () => {
    const flight = singleFlight<string>();
    const stale = deferred('read before the change');
    const fresh = deferred('read after the change');
    const early = flight('k', () => stale.promise);
    const notifiedAt = performance.now();
    await new Promise((r) => setTimeout(r, 5));
    const woken = flight('k', () => fresh.promise, notifiedAt);
    // later callers join the fresh run, not the stale one
    const later = flight('k', () => deferred('unused').promise, notifiedAt);
    stale.finish();
    fresh.finish();
    expect(await early).toBe('read before the change');
    expect(await woken).toBe('read after the change');
    expect(await later).toBe('read after the change');
  });
});

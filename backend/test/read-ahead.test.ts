import { afterEach, describe, expect, it, vi } from 'vitest';
import { readAhead } from '../src/core/read-ahead.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('read ahead (snapshot chunks read before their request)', () => {
  it('hands a read to the one request that takes it, then holds nothing', async () => {
    const ahead = readAhead<string>({ maxEntries: 4, maxEntriesPerOwner: 4, ttlMs: 10_000 });
    let reads = 0;
    ahead.start('org', 'next', async () => `chunk ${++reads}`);
    ahead.start('org', 'next', async () => `chunk ${++reads}`);
    expect(ahead.size).toBe(1);
    expect(await ahead.take('next')).toBe('chunk 1');
    expect(ahead.take('next')).toBeUndefined();
    expect(ahead.take('another')).toBeUndefined();
    expect(reads).toBe(1);
    expect(ahead.size).toBe(0);
  });

  it('drops a read nobody takes within ttlMs', async () => {
    vi.useFakeTimers();
    const ahead = readAhead<string>({ maxEntries: 4, maxEntriesPerOwner: 4, ttlMs: 10_000 });
    ahead.start('org', 'abandoned', async () => 'chunk');
    await vi.advanceTimersByTimeAsync(9_999);
    expect(ahead.size).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ahead.size).toBe(0);
    expect(ahead.take('abandoned')).toBeUndefined();
  });

  it('holds at most maxEntries reads and starts no more until one is taken or dropped', async () => {
    const ahead = readAhead<string>({ maxEntries: 2, maxEntriesPerOwner: 2, ttlMs: 10_000 });
    const started: string[] = [];
    const start = (key: string) =>
      ahead.start('org', key, async () => {
        started.push(key);
        return key;
      });
    start('a');
    start('b');
    start('c');
    expect(started).toEqual(['a', 'b']);
    expect(ahead.take('c')).toBeUndefined();
    expect(await ahead.take('a')).toBe('a');
    start('c');
    expect(started).toEqual(['a', 'b', 'c']);
    expect(ahead.size).toBe(2);
  });

  it("keeps one owner's reads nobody takes to its share, so another owner's still start", async () => {
    const ahead = readAhead<string>({ maxEntries: 4, maxEntriesPerOwner: 2, ttlMs: 10_000 });
    for (const key of ['a1', 'a2', 'a3', 'a4']) ahead.start('a', key, async () => key);
    expect(ahead.size).toBe(2);
    expect(ahead.take('a3')).toBeUndefined();
    ahead.start('b', 'b1', async () => 'b1');
    ahead.start('c', 'c1', async () => 'c1');
    ahead.start('d', 'd1', async () => 'd1');
    expect(await ahead.take('b1')).toBe('b1');
    expect(await ahead.take('c1')).toBe('c1');
    expect(ahead.take('d1')).toBeUndefined(); // the store was full
  });

  it('drops a read that failed, so its request reads for itself', async () => {
    const ahead = readAhead<string>({ maxEntries: 4, maxEntriesPerOwner: 4, ttlMs: 10_000 });
    let fail: (error: Error) => void = () => {};
    ahead.start('org', 'next', () => new Promise<string>((_, reject) => (fail = reject)));
    fail(new Error('connection lost'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(ahead.size).toBe(0);
    expect(ahead.take('next')).toBeUndefined();
  });
});

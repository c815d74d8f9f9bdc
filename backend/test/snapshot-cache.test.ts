import { describe, expect, it } from 'vitest';
import { type EncodedChunk, snapshotCache } from '../src/modules/shapes/snapshot-cache.ts';

const chunk = (bytes: number, offset = 'next'): EncodedChunk => ({
  body: Buffer.alloc(bytes),
  offset,
  next: null,
});

describe('snapshot cache (chunks held for the next client of a shape)', () => {
  it('serves a held chunk only while the head is the snapshot start, and drops the snapshot when it moved', () => {
    const cache = snapshotCache({ maxBytes: 1_000 });
    const first = chunk(100);
    cache.hold('org|page', '10_0', '-1', first);
    expect(cache.get('org|page', '10_0', '-1')).toBe(first);
    expect(cache.get('org|page', '10_0', 'snapshot_x')).toBeUndefined();
    expect(cache.get('org|page', '11_0', '-1')).toBeUndefined();
    expect(cache.bytes).toBe(0);
    expect(cache.get('org|page', '10_0', '-1')).toBeUndefined();
  });

  it('replaces a shape snapshot with one of another start', () => {
    const cache = snapshotCache({ maxBytes: 1_000 });
    cache.hold('org|page', '10_0', '-1', chunk(100));
    cache.hold('org|page', '10_0', 'snapshot_2', chunk(200));
    expect(cache.bytes).toBe(300);
    const newer = chunk(50);
    cache.hold('org|page', '12_0', '-1', newer);
    expect(cache.bytes).toBe(50);
    expect(cache.get('org|page', '12_0', '-1')).toBe(newer);
    expect(cache.has('org|page', 'snapshot_2')).toBe(false);
  });

  it('holds at most maxBytes, dropping the least recently used snapshots, never more than fits', () => {
    const cache = snapshotCache({ maxBytes: 1_000 });
    cache.hold('a', '1_0', '-1', chunk(400));
    cache.hold('b', '1_0', '-1', chunk(400));
    expect(cache.get('a', '1_0', '-1')).toBeDefined(); // a is now more recent than b
    cache.hold('c', '1_0', '-1', chunk(400));
    expect(cache.has('b', '-1')).toBe(false);
    expect(cache.has('a', '-1')).toBe(true);
    expect(cache.has('c', '-1')).toBe(true);
    expect(cache.bytes).toBe(800);
    // a chunk that would take its own snapshot over maxBytes is not held, and drops nothing
    cache.hold('c', '1_0', 'snapshot_2', chunk(700));
    expect(cache.has('c', 'snapshot_2')).toBe(false);
    expect(cache.has('a', '-1')).toBe(true);
    expect(cache.bytes).toBe(800);
    cache.hold('c', '1_0', 'snapshot_2', chunk(500));
    expect(cache.has('c', 'snapshot_2')).toBe(true);
    expect(cache.has('a', '-1')).toBe(false);
    expect(cache.bytes).toBe(900);
  });
});

import { describe, expect, it } from 'vitest';
import { type EncodedChunk, snapshotCache } from '../src/modules/shapes/snapshot-cache.ts';

const chunk = (bytes: number, offset = 'snapshot_2'): EncodedChunk => ({
  body: Buffer.alloc(bytes),
  offset,
  next: null,
});

describe('snapshot cache (chunks held for the next client of a shape)', () => {
  it('serves a held chunk only while the head is the snapshot start, and drops the snapshot when it moved', () => {
    const cache = snapshotCache({ maxBytes: 1_000, maxBytesPerOrganization: 1_000 });
    const first = chunk(100);
    cache.hold('org', 'org|page', '10_0', '-1', first);
    expect(cache.get('org|page', '10_0', '-1')).toBe(first);
    expect(cache.get('org|page', '10_0', 'snapshot_2')).toBeUndefined();
    expect(cache.get('org|page', '11_0', '-1')).toBeUndefined();
    expect(cache.bytes).toBe(0);
    expect(cache.bytesOf('org')).toBe(0);
    expect(cache.get('org|page', '10_0', '-1')).toBeUndefined();
  });

  it('replaces a shape snapshot with one of another start', () => {
    const cache = snapshotCache({ maxBytes: 1_000, maxBytesPerOrganization: 1_000 });
    cache.hold('org', 'org|page', '10_0', '-1', chunk(100));
    cache.hold('org', 'org|page', '10_0', 'snapshot_2', chunk(200, 'snapshot_3'));
    expect(cache.bytes).toBe(300);
    const newer = chunk(50);
    cache.hold('org', 'org|page', '12_0', '-1', newer);
    expect(cache.bytes).toBe(50);
    expect(cache.get('org|page', '12_0', '-1')).toBe(newer);
    expect(cache.has('org|page', 'snapshot_2')).toBe(false);
  });

  it('holds a chunk only under an offset a held chunk of the same start gave out', () => {
    const cache = snapshotCache({ maxBytes: 1_000, maxBytesPerOrganization: 1_000 });
    // no first chunk held: a chunk offset has nothing to follow
    cache.hold('org', 'org|page', '10_0', 'snapshot_2', chunk(100, 'snapshot_3'));
    expect(cache.bytes).toBe(0);
    cache.hold('org', 'org|page', '10_0', '-1', chunk(100, 'snapshot_2'));
    // forged: valid-looking, of the held start, but no held chunk points to it
    for (const forged of ['snapshot_x', 'snapshot_y', 'snapshot_3']) {
      cache.hold('org', 'org|page', '10_0', forged, chunk(100, 'snapshot_z'));
      expect(cache.has('org|page', forged)).toBe(false);
    }
    // of another start: neither held nor a reason to drop the held snapshot
    cache.hold('org', 'org|page', '9_0', 'snapshot_2', chunk(100, 'snapshot_3'));
    expect(cache.has('org|page', '-1')).toBe(true);
    expect(cache.bytes).toBe(100);
    // the chain from the first chunk is held, link by link
    cache.hold('org', 'org|page', '10_0', 'snapshot_2', chunk(100, 'snapshot_3'));
    cache.hold('org', 'org|page', '10_0', 'snapshot_3', chunk(100, '20_0'));
    expect(cache.has('org|page', 'snapshot_3')).toBe(true);
    expect(cache.bytes).toBe(300);
  });

  it('holds at most maxBytes, dropping the least recently used snapshots, never more than fits', () => {
    const cache = snapshotCache({ maxBytes: 1_000, maxBytesPerOrganization: 1_000 });
    cache.hold('org', 'a', '1_0', '-1', chunk(400));
    cache.hold('org', 'b', '1_0', '-1', chunk(400));
    expect(cache.get('a', '1_0', '-1')).toBeDefined(); // a is now more recent than b
    cache.hold('org', 'c', '1_0', '-1', chunk(400));
    expect(cache.has('b', '-1')).toBe(false);
    expect(cache.has('a', '-1')).toBe(true);
    expect(cache.has('c', '-1')).toBe(true);
    expect(cache.bytes).toBe(800);
    // a chunk that would take its own snapshot over the share is not held, and drops nothing
    cache.hold('org', 'c', '1_0', 'snapshot_2', chunk(700));
    expect(cache.has('c', 'snapshot_2')).toBe(false);
    expect(cache.has('a', '-1')).toBe(true);
    expect(cache.bytes).toBe(800);
    cache.hold('org', 'c', '1_0', 'snapshot_2', chunk(500));
    expect(cache.has('c', 'snapshot_2')).toBe(true);
    expect(cache.has('a', '-1')).toBe(false);
    expect(cache.bytes).toBe(900);
  });

  it("keeps one organization's flood of shapes within its share, taking nothing more from the others", () => {
    const cache = snapshotCache({ maxBytes: 1_000, maxBytesPerOrganization: 500 });
    cache.hold('b', 'b|page', '1_0', '-1', chunk(300));
    cache.hold('c', 'c|page', '1_0', '-1', chunk(200));
    // a's own snapshots go first: b's and c's (used before any of a's) stay
    for (let i = 0; i < 50; i++) cache.hold('a', `a|page|${i}`, '1_0', '-1', chunk(100));
    expect(cache.bytesOf('a')).toBe(500);
    expect(cache.has('a|page|49', '-1')).toBe(true);
    expect(cache.has('a|page|44', '-1')).toBe(false);
    expect(cache.has('b|page', '-1')).toBe(true);
    expect(cache.has('c|page', '-1')).toBe(true);
    expect(cache.bytes).toBe(1_000);
    // a snapshot bigger than the share is held only up to it
    cache.hold('a', 'a|big', '1_0', '-1', chunk(400, 'snapshot_2'));
    cache.hold('a', 'a|big', '1_0', 'snapshot_2', chunk(200));
    expect(cache.bytesOf('a')).toBe(500);
    expect(cache.has('a|big', 'snapshot_2')).toBe(false);
    expect(cache.has('b|page', '-1')).toBe(true);
    // when the budget is full, an organization holding nothing else takes the least recently used
    cache.hold('d', 'd|page', '1_0', '-1', chunk(300));
    expect(cache.has('b|page', '-1')).toBe(false);
    expect(cache.has('c|page', '-1')).toBe(true);
    expect(cache.bytes).toBe(1_000);
    // an organization over the budget's rest makes room from its own snapshots before others'
    cache.hold('d', 'd|other', '1_0', '-1', chunk(200));
    expect(cache.has('d|page', '-1')).toBe(false);
    expect(cache.has('c|page', '-1')).toBe(true);
    expect(cache.bytesOf('d')).toBe(200);
  });
});

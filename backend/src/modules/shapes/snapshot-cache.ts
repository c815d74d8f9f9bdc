/**
 * The encoded chunks of each shape's newest snapshot, served to the next client of that shape
 * while nothing has been logged since the snapshot's start S:
 *
 *   get(shape, head, offset) ─┬─ a snapshot of the shape held, started at `head` ─┬─ chunk held ─► its bytes
 *                             │                                                    └─ not held ──► undefined (read it)
 *                             └─ none, or started before `head` (a change logged) ─► dropped; undefined
 *   hold(organization, shape, start, offset, chunk)
 *     ├─ offset -1 (a first chunk) ─┬─ same start as the held snapshot ─► added to it
 *     │                             └─ another start, or none held ─────► replaces it
 *     ├─ offset a held chunk of that start points to (its electric-offset) ─► added to it
 *     └─ any other offset (forged, or its snapshot's chunk before is not held) ─► not held
 *   over the organization's share ─► its own least recently used other snapshots dropped
 *   over maxBytes ─► the organization's own least recently used other snapshots dropped, then
 *                    those of every organization; a chunk that would take its snapshot over
 *                    the share is not held (the client's next request reads it)
 *
 * `head` is where a snapshot started now would start (the organization's log head), so a held
 * chunk is only served while no change of the organization has been logged since it was read:
 * then a read now returns the same rows. A change committed but not yet logged is missing from a
 * held chunk (a read now would show it); the log from S brings it, as it brings every change a
 * chunk read after S lacks (guarantee 4), so a client converges either way.
 * The bytes are every response's body; only the handle header differs between clients.
 *
 * Tenants: an organization holds at most `maxBytesPerOrganization`, and makes room from its own
 * snapshots first, so however many shapes, column sets or offsets it asks for, it takes at most
 * its share of the budget from the others. Only chunks that follow one another from a first
 * chunk are held: an offset that no held chunk gave out is read and sent, never held.
 */
import { OFFSET_BEFORE_ALL } from './electric-protocol.ts';

export interface EncodedChunk {
  /** The response body: the chunk's messages as a JSON array (the last chunk's with snapshot-end and up-to-date). */
  body: Buffer<ArrayBuffer>;
  /** Its `electric-offset`: the next chunk's offset, or S after the last chunk. */
  offset: string;
  /** The next chunk's row cursor and size (read ahead when the client is sent this one); null on the last. */
  next: { after: { createdAt: string; id: string }; rows: number } | null;
}

interface HeldSnapshot {
  organization: string;
  start: string;
  /** By the request offset that asked for the chunk (`-1` for the first). */
  chunks: Map<string, EncodedChunk>;
  /** The offsets the held chunks give out: the only ones a chunk is held under besides `-1`. */
  nextOffsets: Set<string>;
  bytes: number;
}

export function snapshotCache(options: { maxBytes: number; maxBytesPerOrganization: number }) {
  /** In order of last use, least recent first. */
  const snapshots = new Map<string, HeldSnapshot>();
  const organizationBytes = new Map<string, number>();
  let bytes = 0;
  const bytesOf = (organization: string) => organizationBytes.get(organization) ?? 0;
  const count = (held: HeldSnapshot, size: number) => {
    held.bytes += size;
    bytes += size;
    const now = bytesOf(held.organization) + size;
    if (now === 0) organizationBytes.delete(held.organization);
    else organizationBytes.set(held.organization, now);
  };
  const drop = (shape: string) => {
    const held = snapshots.get(shape);
    if (!held) return;
    count(held, -held.bytes);
    snapshots.delete(shape);
  };
  /** Drops the least recently used snapshots `from` picks, other than `keep`, until `fits`. */
  const dropUntil = (fits: () => boolean, keep: string, from: (held: HeldSnapshot) => boolean) => {
    for (const [shape, held] of snapshots) {
      if (fits()) return;
      if (shape !== keep && from(held)) drop(shape);
    }
  };
  return {
    /** The chunk held for `offset` of the shape's snapshot started at `head`, if any. */
    get(shape: string, head: string, offset: string): EncodedChunk | undefined {
      const held = snapshots.get(shape);
      if (!held) return undefined;
      if (held.start !== head) {
        drop(shape);
        return undefined;
      }
      snapshots.delete(shape);
      snapshots.set(shape, held);
      return held.chunks.get(offset);
    },
    /** Whether a chunk for `offset` of the shape's held snapshot is held (of any start). */
    has(shape: string, offset: string): boolean {
      return snapshots.get(shape)?.chunks.has(offset) ?? false;
    },
    /** Holds the chunk answered to `offset` of the organization's shape's snapshot started at `start`. */
    hold(organization: string, shape: string, start: string, offset: string, chunk: EncodedChunk): void {
      const first = offset === OFFSET_BEFORE_ALL;
      let held = snapshots.get(shape);
      if (held?.start !== start) {
        // a chunk offset of a snapshot not held has no chunk before it here
        if (!first) return;
        drop(shape);
        held = { organization, start, chunks: new Map(), nextOffsets: new Set(), bytes: 0 };
      } else if (!first && !held.nextOffsets.has(offset)) {
        return; // forged, or its chunk before is not held
      }
      snapshots.delete(shape);
      snapshots.set(shape, held);
      const size = chunk.body.byteLength;
      const share = options.maxBytesPerOrganization;
      if (held.chunks.has(offset) || held.bytes + size > share) return;
      const fitsShare = () => bytesOf(organization) + size <= share;
      const fitsBudget = () => bytes + size <= options.maxBytes;
      dropUntil(
        () => fitsShare() && fitsBudget(),
        shape,
        (other) => other.organization === organization,
      );
      dropUntil(fitsBudget, shape, () => true);
      held.chunks.set(offset, chunk);
      held.nextOffsets.add(chunk.offset);
      count(held, size);
    },
    /** Bytes held now, over every shape. */
    get bytes(): number {
      return bytes;
    },
    /** Bytes the organization's snapshots hold now. */
    bytesOf,
  };
}

/**
 * The encoded chunks of each shape's newest snapshot, served to the next client of that shape
 * while nothing has been logged since the snapshot's start S:
 *
 *   get(shape, head, offset) ─┬─ a snapshot of the shape held, started at `head` ─┬─ chunk held ─► its bytes
 *                             │                                                    └─ not held ──► undefined (read it)
 *                             └─ none, or started before `head` (a change logged) ─► dropped; undefined
 *   hold(shape, start, offset, chunk) ─┬─ same start as the held snapshot ─► added to it
 *                                      └─ another start ─► replaces it
 *   over maxBytes ─► the least recently used other snapshots dropped; a chunk that would take
 *                    its snapshot over maxBytes is not held (the client's next request reads it)
 *
 * `head` is where a snapshot started now would start (the organization's log head), so a held
 * chunk is only served while no change of the organization has been logged since it was read:
 * then a read now returns the same rows. A change committed but not yet logged is missing from a
 * held chunk (a read now would show it); the log from S brings it, as it brings every change a
 * chunk read after S lacks (guarantee 4), so a client converges either way.
 * The bytes are every response's body; only the handle header differs between clients.
 */

export interface EncodedChunk {
  /** The response body: the chunk's messages as a JSON array (the last chunk's with snapshot-end and up-to-date). */
  body: Buffer<ArrayBuffer>;
  /** Its `electric-offset`: the next chunk's offset, or S after the last chunk. */
  offset: string;
  /** The next chunk's row cursor and size (read ahead when the client is sent this one); null on the last. */
  next: { after: { createdAt: string; id: string }; rows: number } | null;
}

interface HeldSnapshot {
  start: string;
  /** By the request offset that asked for the chunk (`-1` for the first). */
  chunks: Map<string, EncodedChunk>;
  bytes: number;
}

export function snapshotCache(options: { maxBytes: number }) {
  /** In order of last use, least recent first. */
  const snapshots = new Map<string, HeldSnapshot>();
  let bytes = 0;
  const drop = (shape: string) => {
    const held = snapshots.get(shape);
    if (!held) return;
    bytes -= held.bytes;
    snapshots.delete(shape);
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
    /** Holds the chunk answered to `offset` of the shape's snapshot started at `start`. */
    hold(shape: string, start: string, offset: string, chunk: EncodedChunk): void {
      let held = snapshots.get(shape);
      if (held?.start !== start) {
        drop(shape);
        held = { start, chunks: new Map(), bytes: 0 };
      }
      snapshots.delete(shape);
      snapshots.set(shape, held);
      const size = chunk.body.byteLength;
      if (held.chunks.has(offset) || held.bytes + size > options.maxBytes) return;
      for (const other of snapshots.keys()) {
        if (bytes + size <= options.maxBytes || other === shape) break;
        drop(other);
      }
      held.chunks.set(offset, chunk);
      held.bytes += size;
      bytes += size;
    },
    /** Bytes held now, over every shape. */
    get bytes(): number {
      return bytes;
    },
  };
}

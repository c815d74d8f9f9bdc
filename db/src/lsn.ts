/**
 * LSNs as numbers. pg-logical-replication pads the LSNs inside messages (`00000000/0194B450`)
 * but not the one it passes with each message (`0/194B450`): compare them only as BigInt.
 */

export function parseLsn(text: string): bigint {
  const slash = text.indexOf('/');
  if (slash <= 0) throw new Error(`not an LSN: "${text}"`);
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** An activity's key: the commit LSN of its transaction and its position in it. */
export interface ActivityKey {
  /** A bigint, or its decimal text (as an int8 is read to keep every digit). */
  lsn: bigint | string;
  position: number;
}

/** The activity id, feed cursor and shape offset: `<commit lsn>_<position>`, both decimal. */
export function activityId(key: ActivityKey): string {
  return `${key.lsn}_${key.position}`;
}

export function parseActivityId(id: string): { lsn: string; position: number } {
  const [lsn, position] = id.split('_');
  return { lsn: lsn ?? '0', position: Number(position ?? 0) };
}

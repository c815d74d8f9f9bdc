/**
 * A TCP proxy in front of PostgreSQL that lets a test replace one pgoutput message of a real
 * replication stream by a crafted one: a real server never sends a message the worker cannot
 * read, so this is the only way to see what the worker does with one. Everything else passes
 * through unchanged, byte for byte.
 *
 *   worker ──► proxy ──► PostgreSQL        every connection piped as it is; on a replication
 *          ◄──       ◄──                   connection (startup parameter `replication`) the
 *                                          server's messages are cut into frames (type u8 ·
 *                                          length i32 · body) and
 *     armed: the next XLogData ('d' · 'w') carrying a pgoutput insert ('I') ──► craft(it) instead
 *     the worker's status updates ('d' · 'r') on that connection, from then on ──► recorded
 *
 * A test mocks nothing of the worker with it: the worker's own code reads the crafted message
 * from its own socket.
 */
import { startTcpProxy } from './tcp-proxy.ts';

const COPY_DATA = 0x64; // 'd'
const XLOG_DATA = 0x77; // 'w'
const STATUS_UPDATE = 0x72; // 'r'
const BEGIN = 0x42; // 'B'
const INSERT = 0x49; // 'I'
/** 'w', start LSN, end LSN, send time: where the pgoutput message starts in a CopyData body. */
const PGOUTPUT_AT = 25;

export interface ReplacedInsert {
  /** The commit LSN of the transaction whose insert was replaced (from its begin message). */
  commitLsn: bigint;
  /** Every flushed position the worker reported on that connection after the replacement. */
  acknowledged: bigint[];
  /** Resolves when the worker has closed that connection. */
  closed: Promise<void>;
}

export interface ReplicationProxy {
  url: string;
  /**
   * On the next replication connection to stream an insert, replace that insert's CopyData
   * body by `craft(body)`; resolves once it is sent.
   */
  replaceNextInsert(craft: (copyDataBody: Buffer) => Buffer): Promise<ReplacedInsert>;
  close(): Promise<void>;
}

interface Armed {
  craft: (body: Buffer) => Buffer;
  resolve: (replaced: ReplacedInsert) => void;
}

export async function startReplicationProxy(databaseUrl: string): Promise<ReplicationProxy> {
  let armed: Armed | null = null;
  const proxy = await startTcpProxy(databaseUrl, (client, upstream) => {
    let replication = false;
    let startupSeen = false;
    let clientBytes: Buffer = Buffer.alloc(0);
    let serverBytes: Buffer = Buffer.alloc(0);
    let commitLsn = 0n;
    let replaced: (ReplacedInsert & { done: () => void }) | null = null;

    client.on('data', (data) => {
      upstream.write(data);
      if (startupSeen && !replication) return;
      clientBytes = Buffer.concat([clientBytes, data]);
      if (!startupSeen) {
        if (clientBytes.length < 4) return;
        const length = clientBytes.readInt32BE(0);
        if (clientBytes.length < length) return;
        replication = clientBytes.subarray(8, length).toString('latin1').split('\0').includes('replication');
        startupSeen = true;
        clientBytes = clientBytes.subarray(length);
      }
      for (const frame of frames(clientBytes, (rest) => (clientBytes = rest))) {
        if (replaced && frame[0] === COPY_DATA && frame[5] === STATUS_UPDATE) {
          replaced.acknowledged.push(frame.readBigUInt64BE(5 + 9));
        }
      }
    });

    upstream.on('data', (data) => {
      if (!replication) {
        client.write(data);
        return;
      }
      serverBytes = Buffer.concat([serverBytes, data]);
      for (const frame of frames(serverBytes, (rest) => (serverBytes = rest))) {
        const isXLogData = frame[0] === COPY_DATA && frame[5] === XLOG_DATA;
        const tag = isXLogData ? frame[5 + PGOUTPUT_AT] : undefined;
        if (tag === BEGIN) commitLsn = frame.readBigUInt64BE(5 + PGOUTPUT_AT + 1);
        if (tag === INSERT && armed && !replaced) {
          const { craft, resolve } = armed;
          armed = null;
          let done = () => {};
          const closed = new Promise<void>((r) => {
            done = r;
          });
          replaced = { commitLsn, acknowledged: [], closed, done };
          client.write(copyData(craft(frame.subarray(5))));
          resolve(replaced);
          continue;
        }
        client.write(frame);
      }
    });

    client.on('close', () => replaced?.done());
  });

  return {
    url: proxy.url,
    replaceNextInsert: (craft) =>
      new Promise((resolve) => {
        armed = { craft, resolve };
      }),
    close: proxy.close,
  };
}

/** The whole frames at the start of `bytes` (type u8 · length i32 counting itself · body); `keep` gets the rest. */
function frames(bytes: Buffer, keep: (rest: Buffer) => void): Buffer[] {
  const whole: Buffer[] = [];
  let at = 0;
  while (bytes.length - at >= 5) {
    const size = 1 + bytes.readInt32BE(at + 1);
    if (bytes.length - at < size) break;
    whole.push(bytes.subarray(at, at + size));
    at += size;
  }
  keep(bytes.subarray(at));
  return whole;
}

function copyData(body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header[0] = COPY_DATA;
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

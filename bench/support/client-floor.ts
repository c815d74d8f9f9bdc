/**
 * Starts the floor server (floor-server.ts) in a child process with the responses recorded
 * from the API, and asks it what it answered after each sync.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type FloorMessage, type FloorReport, floorKey, type RecordedResponse } from './floor-server.ts';

export interface ClientFloor {
  url: string;
  /** Resolves once the floor holds a live request (at once if it holds one); rejects after 10 s. */
  liveHeld(): Promise<void>;
  /** What it answered since the last report; throws when it had no recorded answer for a request. */
  report(): Promise<FloorReport>;
  stop(): Promise<void>;
}

/** A response of the API as the floor server replays it, recorded with the request it answered. */
export async function recordResponse(requestUrl: string, res: Response): Promise<RecordedResponse> {
  return {
    key: floorKey(new URL(requestUrl).searchParams),
    status: res.status,
    headers: [...res.headers],
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

export async function startClientFloor(recorded: RecordedResponse[]): Promise<ClientFloor> {
  const child = fork(fileURLToPath(new URL('./floor-server.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced', // the bodies go over as bytes, not as JSON arrays of numbers
  });
  const reply = <T>() =>
    new Promise<T>((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`the floor server exited (${code})`));
      child.once('exit', exited);
      child.once('message', (message) => {
        child.off('exit', exited);
        resolve(message as T);
      });
    });
  const listening = reply<{ url: string }>();
  child.send({ recorded } satisfies FloorMessage);
  const { url } = await listening;
  return {
    url,
    async liveHeld() {
      const held = reply<{ live: true }>();
      child.send({ awaitLive: true } satisfies FloorMessage);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the client sent no live request within 10 s')), 10_000);
      });
      await Promise.race([held, timeout]).finally(() => clearTimeout(timer));
    },
    async report() {
      const answer = reply<FloorReport>();
      child.send({ report: true } satisfies FloorMessage);
      const report = await answer;
      if (report.missed.length > 0) {
        throw new Error(`the floor server had no recorded answer for ${report.missed.join(', ')}`);
      }
      return report;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.removeAllListeners('exit');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

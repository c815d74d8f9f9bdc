/**
 * A CPU profile of this process around one piece of work (node:inspector), and where its time
 * went: self time by function, the largest first.
 */
import { writeFile } from 'node:fs/promises';
import type { Profiler, Runtime } from 'node:inspector';
import { Session } from 'node:inspector/promises';

/** `samplingIntervalUs`: V8's default (1,000 µs) unless given. */
export async function profiled<T>(
  work: () => Promise<T>,
  samplingIntervalUs?: number,
): Promise<{ result: T; profile: Profiler.Profile }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  if (samplingIntervalUs)
    await session.post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
  await session.post('Profiler.start');
  try {
    const result = await work();
    const { profile } = await session.post('Profiler.stop');
    return { result, profile };
  } finally {
    session.disconnect();
  }
}

/** `work` profiled into `file` (open it in Chrome's DevTools), or only run when no file is given. */
export async function profiledTo<T>(file: string | undefined, work: () => Promise<T>): Promise<T> {
  if (!file) return work();
  const { result, profile } = await profiled(work);
  await writeFile(file, JSON.stringify(profile));
  return result;
}

export interface SelfTime {
  /** `name (file:line)`; `(garbage collector)` and `(program)` as V8 names them. */
  where: string;
  ms: number;
  share: number;
}

/** Self time by function over the profile's busy time (its idle samples left out), the `top` largest. */
export function selfTimeTop(profile: Profiler.Profile, top: number): SelfTime[] {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  let total = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // the first sample's delta runs from the profiler's start, not from a sample before it
  for (let i = 1; i < samples.length; i++) {
    const node = nodes.get(samples[i] ?? -1);
    const ms = (deltas[i] ?? 0) / 1000;
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const where = functionName(node.callFrame);
    byFunction.set(where, (byFunction.get(where) ?? 0) + ms);
    total += ms;
  }
  return [...byFunction]
    .map(([where, ms]) => ({ where, ms, share: total > 0 ? ms / total : 0 }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top);
}

function functionName({ functionName, url, lineNumber }: Runtime.CallFrame): string {
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const file = url.slice(url.lastIndexOf('/') + 1);
  return `${name} (${file}:${lineNumber + 1})`;
}

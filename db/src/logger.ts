/**
 * The process loggers of `npm start`, the API and the worker: JSON lines in production
 * (NODE_ENV=production) for a log collector, one readable line per entry otherwise. Written
 * synchronously, so a fatal line printed just before exiting is not lost.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export function createLogger(options: { level: string; name?: string; json: boolean }): Logger {
  const { json, ...pinoOptions } = options;
  if (json) return pino(pinoOptions);
  return pino(
    // an error as its message and where it was thrown, not a stack over twenty lines
    { ...pinoOptions, serializers: { err: oneLineError } },
    pretty({
      sync: true,
      singleLine: true,
      colorize: process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      // the error goes into the message line; pino-pretty would print it over several lines
      ignore: 'pid,hostname,err',
      messageFormat: (log, messageKey) =>
        `${String(log[messageKey] ?? '')}${log.err ? `: ${String(log.err)}` : ''}`,
    }),
  );
}

function oneLineError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { name, message, stack } = err;
  const code = 'code' in err ? err.code : undefined;
  const frame =
    typeof stack === 'string' ? stack.split('\n').find((line) => /^\s+at /.test(line)) : undefined;
  const where = frame ? ` (${frame.trim()})` : '';
  return `${name}${code ? ` ${String(code)}` : ''}: ${message}${where}`;
}

import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level: string;
  format: 'auto' | 'json' | 'pretty';
}

/** JSON lines by default (for journald and log shippers); readable when a person is watching a terminal. */
export function createLogger(opts: LogOptions, destination: NodeJS.WritableStream = process.stdout): Logger {
  const readable = opts.format === 'pretty' || (opts.format === 'auto' && (destination as { isTTY?: boolean }).isTTY === true);
  if (!readable) return pino({ level: opts.level, base: undefined }, destination as NodeJS.WritableStream & { write: (s: string) => boolean });
  return pino({ level: opts.level, base: undefined }, pretty({ destination, colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
}

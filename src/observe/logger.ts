import { pino, type Logger, type DestinationStream } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

export type LogFormat = 'json' | 'pretty' | 'auto';

/**
 * One JSON line per event on stdout, for machines; on an interactive
 * terminal (format auto) or when asked (pretty), the same events as readable
 * lines. The redact list is a backstop: no stage should ever put a secret
 * into a log call in the first place.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  return pino(
    {
      name: 'smtp-bridge',
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['password', '*.password', 'pass', '*.pass', 'payload'], censor: '[redacted]' },
    },
    destination ??
      (pretty
        ? PinoPretty({ destination: 1, colorize: process.stdout.isTTY === true, ignore: 'name', translateTime: 'SYS:standard' })
        : pino.destination({ fd: 1, sync: false })),
  );
}

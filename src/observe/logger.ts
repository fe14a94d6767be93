import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * One JSON line per event on stdout. The redact list is a backstop: no stage
 * should ever put a secret into a log call in the first place.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'smtp-bridge',
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['password', '*.password', 'pass', '*.pass', 'payload'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

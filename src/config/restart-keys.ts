import { isDeepStrictEqual } from 'node:util';
import type { Config } from './schema.js';

/**
 * Settings a running bridge cannot take over: they shape sockets, files and
 * the process itself. A reload keeps their running values and says which changed.
 */
const RESTART_KEYS = [
  'listen',
  'tls',
  'hostname',
  'sasl_realm',
  'greeting_delay_ms',
  'max_message_size',
  'limits',
  'spool',
  'http',
  'log',
] as const;

export function keysNeedingRestart(running: Config, next: Config): (typeof RESTART_KEYS)[number][] {
  return RESTART_KEYS.filter((key) => !isDeepStrictEqual(running[key], next[key]));
}

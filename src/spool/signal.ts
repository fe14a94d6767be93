import { watch, type FSWatcher } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const KICK_FILE = 'kick';

/**
 * Tells a running server that the spool changed under it (a `queue retry`,
 * an unfreeze). The server watches the spool directory for this file, so
 * the queue tools need no socket or PID to reach it.
 */
export async function kickServer(spoolDir: string): Promise<void> {
  await writeFile(join(spoolDir, KICK_FILE), `${Date.now()}\n`);
}

/** Calls `onKick` whenever a queue tool kicks; returns the watcher to close on shutdown. */
export function watchKicks(spoolDir: string, onKick: () => void): FSWatcher {
  const watcher = watch(spoolDir, (_event, name) => {
    if (name === KICK_FILE) onKick();
  });
  watcher.unref();
  return watcher;
}

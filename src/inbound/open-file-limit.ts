import { readFile } from 'node:fs/promises';
import type { Logger } from '../observe/logger.js';

/** Descriptors the bridge needs besides its device connections: listeners, spool files, upstream connections, the log. */
const DESCRIPTORS_BESIDES_CONNECTIONS = 64;

/**
 * Warns when the process may open fewer files than max_connections needs.
 * An accept that fails with EMFILE never reaches Node: libuv closes the new
 * connection at once and reports nothing, so devices would be dropped
 * without a trace. Linux only (/proc); elsewhere nothing is checked.
 */
export async function warnIfOpenFilesTooFew(maxConnections: number, logger: Logger): Promise<void> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  if (soft === undefined) return;
  const needed = maxConnections + DESCRIPTORS_BESIDES_CONNECTIONS;
  if (Number(soft) < needed) {
    logger.warn(
      { open_files: Number(soft), needed, max_connections: maxConnections },
      'the open-file limit (ulimit -n) is below what max_connections needs: connections beyond it are dropped unlogged (EMFILE)',
    );
  }
}

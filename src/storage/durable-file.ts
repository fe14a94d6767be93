import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `file` whole or not at all, surviving a crash or power loss:
 * written beside it under a temporary name, fsync'd, renamed over it, and the
 * directory fsync'd so the rename itself is on disk.
 */
export async function writeFileDurably(file: string, content: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeNewFileSynced(tmp, content);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(file));
}

/** Removes `file` durably; false if it did not exist. */
export async function removeFileDurably(file: string): Promise<boolean> {
  try {
    await rm(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  await syncDirectory(dirname(file));
  return true;
}

/** Creates `file` (it must not exist) and fsyncs its content; the caller renames it into place. */
export async function writeNewFileSynced(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes renames and removals in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

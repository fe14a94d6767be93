import { randomBytes } from 'node:crypto';
import { close, fsync, open, write } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
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

// Plain file descriptors rather than fs/promises FileHandles: this runs several times for every
// message, and a FileHandle's bookkeeping cost more CPU than the system calls themselves.
const openFd = promisify(open);
const writeFd = promisify(write);
const fsyncFd = promisify(fsync);
const closeFd = promisify(close);

/** Creates `file` (it must not exist) and fsyncs its content; the caller renames it into place. */
export async function writeNewFileSynced(file: string, content: string): Promise<void> {
  const fd = await openFd(file, 'wx', 0o600);
  try {
    await writeFd(fd, content);
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Creates an empty `file`; false if it exists already. */
export async function createExclusive(file: string): Promise<boolean> {
  try {
    await closeFd(await openFd(file, 'wx', 0o600));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Makes renames and removals in `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

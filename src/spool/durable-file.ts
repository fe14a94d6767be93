import { randomBytes } from 'node:crypto';
import { closeSync, fsync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { basename, dirname, join } from 'node:path';

// Metadata work (open, write into the page cache, rename, unlink, close) runs on the event loop:
// on a local disk each call takes microseconds, while a round trip through libuv's thread pool
// costs a thread wake-up on either side, several times more CPU on a VM. Only fsync, which waits
// for the disk itself, goes to the pool.
export const fsyncFd = promisify(fsync);

/**
 * Replaces `file` whole or not at all, surviving a crash or power loss:
 * written beside it under a temporary name, fsync'd, renamed over it, and the
 * directory fsync'd so the rename itself is on disk.
 */
export async function writeFileDurably(file: string, content: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeAll(fd, Buffer.from(content));
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    unlinkIfPresent(tmp);
    throw err;
  }
  await syncDirectory(dirname(file));
}

/** Removes `file` durably; false if it did not exist. */
export async function removeFileDurably(file: string): Promise<boolean> {
  if (!unlinkIfPresent(file)) return false;
  await syncDirectory(dirname(file));
  return true;
}

/** unlink, where gone already is fine; false if there was nothing to remove. */
export function unlinkIfPresent(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** write(2) until all of `data` is in, as a short write is allowed to stop early. */
export function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

/**
 * Makes renames and removals in `dir` durable. Callers share fsyncs, group
 * commit style: each waits for the first fsync of the directory that starts
 * after its call, and everyone who called while one was running shares the
 * next, so ten messages spooled at once cost two directory fsyncs, not ten.
 */
export function syncDirectory(dir: string): Promise<void> {
  let group = directorySyncs.get(dir);
  if (!group) directorySyncs.set(dir, (group = new DirectorySync(dir)));
  return group.sync();
}

const directorySyncs = new Map<string, DirectorySync>();

class DirectorySync {
  private running?: Promise<void>;
  private next?: Promise<void>;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    // The running fsync may have begun before the caller's rename: it waits for the one after.
    this.next = this.running.then(
      () => this.start(),
      () => this.start(),
    );
    return this.next;
  }

  private start(): Promise<void> {
    this.next = undefined;
    const run = fsyncPath(this.dir).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

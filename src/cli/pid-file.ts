import { readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where `serve` says which process it is, so `reload` can signal it: beside the freezes, in the spool's state. */
export function pidFileOf(spoolDir: string): string {
  return join(spoolDir, 'state', 'smtp-bridge.pid');
}

export async function writePidFile(spoolDir: string): Promise<void> {
  await writeFile(pidFileOf(spoolDir), `${process.pid}\n`, { mode: 0o644 });
}

/** Removes the file if it is still ours (a second serve on the same spool may have replaced it). */
export async function removePidFile(spoolDir: string): Promise<void> {
  const file = pidFileOf(spoolDir);
  if ((await readFile(file, 'utf8').catch(() => '')).trim() === String(process.pid)) await rm(file, { force: true });
}

/**
 * The pid of the serve process on this spool. A pid left by a bridge that
 * died may belong to another program by now; on Linux its command line
 * tells, so nobody else gets the signal.
 */
export async function runningServePid(spoolDir: string): Promise<number> {
  const file = pidFileOf(spoolDir);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new Error(`no ${file}: is "smtp-bridge serve" running with this config?`);
  });
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file} holds no process id`);
  let commandLine: string;
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    throw new Error(`process ${pid} from ${file} is not running: the bridge stopped without removing it`);
  }
  if (!/\bserve\b/.test(commandLine)) throw new Error(`process ${pid} from ${file} is not "smtp-bridge serve" (${commandLine.trim()})`);
  return pid;
}

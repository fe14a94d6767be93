import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A device client run as a child process: bounded in time, output collected, never crashing the test. */
export interface ProcessRun {
  child: ChildProcess;
  /** Settles once the child has exited; never rejects. */
  done: Promise<{ stdout: string; stderr: string; exitCode: number | null; timedOut: boolean; spawnError?: NodeJS.ErrnoException }>;
}

/** Starts `cmd`; it is killed (this child, by its PID) once `timeoutMs` has passed. */
export function startProcess(cmd: string, args: string[], timeoutMs: number): ProcessRun {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  let spawnError: NodeJS.ErrnoException | undefined;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  // A child that exits early closes its stdin; writes racing that must not crash the test.
  child.stdin!.on('error', () => {});
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<Awaited<ProcessRun['done']>>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code, timedOut, spawnError });
    });
  });
  return { child, done };
}

/** Runs `cmd` with `input` on its standard input, to the end or to its time bound. */
export function runProcess(cmd: string, args: string[], input: string | Buffer, timeoutMs: number): ProcessRun['done'] {
  const run = startProcess(cmd, args, timeoutMs);
  run.child.stdin!.end(input);
  return run.done;
}

/** Hands `use` a file holding `content`, for clients that read the message from a file; removes it after. */
export async function withTempFile<T>(content: Buffer, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'smtp-bridge-client-'));
  try {
    const file = path.join(dir, 'message.eml');
    await writeFile(file, content);
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

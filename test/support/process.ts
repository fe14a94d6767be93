import { spawn, type ChildProcess } from 'node:child_process';
import type { LogLine } from './bridge.js';
import { CLI, NODE } from './cli.js';
import { waitUntil } from './wait.js';

export interface BridgeProcess {
  child: ChildProcess;
  logs: LogLine[];
  stderr: string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and waits for the process to be gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * `smtp-bridge serve` as a separate process, so a test can kill -9 it (or run
 * it as another user). Its JSON log lines are collected; it is killed after
 * `lifetimeMs` at the latest.
 */
export async function spawnBridge(
  configFile: string,
  listeners: number,
  lifetimeMs = 60_000,
  user?: { uid: number; gid: number },
  /** Runs it under `prlimit --nofile=N`, as a host with a low `ulimit -n` would. */
  openFiles?: number,
): Promise<BridgeProcess> {
  const command = [NODE, CLI, 'serve', '-c', configFile];
  if (openFiles !== undefined) command.unshift('prlimit', `--nofile=${openFiles}`);
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...user });
  const logs: LogLine[] = [];
  let stderr = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const limit = setTimeout(() => child.kill('SIGKILL'), lifetimeMs);
  limit.unref();
  void exited.then(() => clearTimeout(limit));

  const waitForLog = (predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> =>
    waitUntil(
      () => `a log line; stderr: ${stderr}; last logs: ${JSON.stringify(logs.slice(-5))}`,
      () => logs.find(predicate),
      timeoutMs,
    );

  const bridge: BridgeProcess = {
    child,
    logs,
    get stderr() {
      return stderr;
    },
    waitForLog,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
  try {
    for (let i = 0; i < listeners; i++) {
      await waitForLog(() => logs.filter((l) => l.msg === 'listening').length > i);
    }
  } catch (err) {
    await bridge.kill('SIGKILL');
    throw err;
  }
  return bridge;
}

import { execFile, spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * Where things are, for every test: the compiled tests run from
 * dist/test/<suite>/, this file from dist/test/support/.
 */

/** The checkout's root, where the sources (and the Python helpers) are. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The compiled CLI, as a user runs it. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The node binary running the tests, so a child runs the same Node. */
export const NODE = process.execPath;

/** A helper script under test/support/ in the checkout (the compiler copies only .ts into dist/). */
export function supportScript(name: string): string {
  return fileURLToPath(new URL(`../../../test/support/${name}`, import.meta.url));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI_TIMEOUT_MS = 30_000;

/**
 * `smtp-bridge ARGS` without blocking the event loop, for tests whose bridge
 * runs in this process and must keep answering meanwhile.
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(NODE, [CLI, ...args], { timeout: CLI_TIMEOUT_MS, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** `smtp-bridge ARGS` with `input` on its standard input, waited for. */
export function runCliSync(
  args: string[],
  { input = '', env = {} }: { input?: string; env?: NodeJS.ProcessEnv } = {},
): SpawnSyncReturns<string> {
  return spawnSync(NODE, [CLI, ...args], { input, encoding: 'utf8', timeout: CLI_TIMEOUT_MS, env: { ...process.env, ...env } });
}

export interface CliRun {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** A CLI command as a user runs it, killed after `timeoutMs` at the latest; the test may talk to it on stdin. */
export function startCli(args: string[], timeoutMs = 30_000): CliRun {
  const child = spawn(NODE, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let all = '';
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    all += chunk.toString();
    wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    all += chunk.toString();
    wake();
  });
  child.stdin!.on('error', () => {});
  const limit = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(limit);
      wake();
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    child,
    output: () => all,
    done,
    waitForOutput: (pattern, waitMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(all);
          if (match) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(match);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`the command ended without printing ${pattern}: ${all}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no ${pattern} within ${waitMs} ms: ${all}`));
        }, waitMs);
        waiters.add(check);
        check();
      }),
  };
}

import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
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

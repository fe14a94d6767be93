import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns something other than undefined, null or
 * false, and returns that, so the caller can assert on what it waited for.
 * Rejects naming `what` after `timeoutMs` (a function is asked only then, so
 * it can describe the state at the deadline). `pollMs` 0 only yields to the
 * event loop between looks, for waits on work that needs no real time.
 */
export async function waitUntil<T>(
  what: string | (() => string),
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(pollMs);
  }
}

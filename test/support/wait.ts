import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns something truthy, and returns that, so the
 * caller can assert on what it waited for (a count of 0 is still waiting).
 * Rejects naming `what` after `timeoutMs` (a function is asked only then, so
 * it can describe the state at the deadline). `pollMs` 0 only yields to the
 * event loop between looks, for waits on work that needs no real time.
 */
export async function waitUntil<T>(
  what: string | (() => string),
  probe: () => T | undefined | null | false | 0 | '' | Promise<T | undefined | null | false | 0 | ''>,
  timeoutMs = 10_000,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(pollMs);
  }
}

/**
 * Delay before retry number `attempt` (1-based): doubling from `initial` up
 * to `max`, with ±10 % jitter so messages deferred together do not all come
 * back in the same instant.
 */
export function nextDelay(attempt: number, initial: number, max: number, random: () => number = Math.random): number {
  const base = Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
  return Math.min(max, Math.round(base * (0.9 + 0.2 * random())));
}

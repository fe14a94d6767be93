/**
 * Where a window starts: the two fixed connections the bridge used before it
 * adapted, which no provider has refused. Postfix starts at 5; a lower start
 * costs a few deliveries of growth and spares a provider that allows only 3
 * sessions (Microsoft 365) refusals on the first burst.
 */
export const INITIAL_CONCURRENCY = 2;

/**
 * How long a provider's refusal caps the window. Its limit rarely changes, so
 * probing above it after every few deliveries would only collect refusals;
 * after this long the window may grow past it once more, in case other
 * clients of the same account had taken the sessions.
 */
export const REFUSAL_MEMORY_MS = 10 * 60_000;

/**
 * How many deliveries may run at once to one upstream, learnt as Postfix's
 * queue manager learns it: start low; while every slot is busy and the
 * provider accepts, grow by one slot per full round of deliveries (1/limit per
 * accepted message); when the provider refuses another session, drop to the
 * sessions it was still serving and stay there for a while; when it cannot be
 * reached, halve. Never above `max`, never below 1, kept for the whole run.
 */
export class ConcurrencyWindow {
  private current: number;
  /** Full-window deliveries accepted since the limit last changed; the limit grows when they make a round. */
  private credit = 0;
  private ceiling: number;
  private ceilingUntil = 0;

  constructor(private max: number) {
    this.current = Math.min(INITIAL_CONCURRENCY, max);
    this.ceiling = max;
  }

  /** Deliveries that may run at once now. */
  get limit(): number {
    return this.current;
  }

  /**
   * The provider took a message while `busy` deliveries (this one included)
   * ran. Only a full window is evidence that more slots would be used.
   * Returns the new limit when it changed.
   */
  accepted(busy: number, now: number): number | undefined {
    const cap = now < this.ceilingUntil ? this.ceiling : this.max;
    if (busy < this.limit || this.limit >= cap || ++this.credit < this.limit) return undefined;
    return this.set(this.limit + 1);
  }

  /**
   * The provider refused one more session while it served `served` of ours:
   * that many is what it takes. Returns the new limit when it changed.
   */
  refused(served: number, now: number): number | undefined {
    const changed = this.set(Math.max(1, Math.min(this.limit, served)));
    this.ceiling = this.limit;
    this.ceilingUntil = now + REFUSAL_MEMORY_MS;
    return changed;
  }

  /** A new maximum (the config was reloaded): the limit learnt so far stays within it. */
  resize(max: number): void {
    this.max = max;
    this.ceiling = Math.min(this.ceiling, max);
    if (this.current > max) this.set(max);
  }

  /** The provider could not be reached at all. Returns the new limit when it changed. */
  unreachable(): number | undefined {
    return this.set(Math.max(1, Math.floor(this.limit / 2)));
  }

  private set(limit: number): number | undefined {
    if (limit === this.limit) return undefined;
    this.current = limit;
    this.credit = 0;
    return limit;
  }
}

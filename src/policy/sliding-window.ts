/**
 * Events within a sliding window: "at most `limit` in any `window` ms". One
 * timestamp is kept per counted event and nothing is counted past the limit,
 * so memory is bounded by the limit however hard a client pushes. A sliding
 * window (rather than a token bucket) gives exactly the rule the operator
 * wrote: 20/1h never lets a 21st message through within an hour.
 */
export class SlidingWindow {
  private times: number[] = [];
  private start = 0;

  constructor(
    readonly limit: number,
    readonly window: number,
  ) {}

  /** Events still inside the window at `now`. */
  count(now: number): number {
    while (this.start < this.times.length && this.times[this.start] <= now - this.window) this.start++;
    // Compact once the expired head outgrows the live part, keeping every operation amortised O(1).
    if (this.start > 32 && this.start * 2 > this.times.length) {
      this.times = this.times.slice(this.start);
      this.start = 0;
    }
    return this.times.length - this.start;
  }

  hasRoom(now: number): boolean {
    return this.count(now) < this.limit;
  }

  /**
   * When the next event fits while `reserved` of the limit are taken by
   * events not counted yet: `now` if it does already, else when enough
   * counted ones have left the window, or never if the reserved ones fill it.
   */
  roomAt(now: number, reserved = 0): number {
    const count = this.count(now);
    if (count + reserved < this.limit) return now;
    if (reserved >= this.limit) return Infinity;
    return this.times[this.start + count + reserved - this.limit] + this.window;
  }

  /** Counts one event; callers check hasRoom() first, so the window never holds more than the limit. */
  add(now: number): void {
    this.times.push(now);
  }

  forget(): void {
    this.times = [];
    this.start = 0;
  }
}

import { formatRate, type Rate } from '../config/schema.js';
import { SlidingWindow } from '../policy/sliding-window.js';

/**
 * An upstream's declared rate (`rate: 30/1m`, or a list that must all hold):
 * the bridge keeps to it by waiting in the queue rather than being refused.
 * A delivery holds one of a rate's `count` slots from its start until
 * `window` after it ended. The provider sees each message somewhere between
 * those two moments, so however long each delivery takes, no `window` of
 * the provider's clock sees more than `count` of them. A short burst still
 * goes at once, as a sliding window lets it.
 */
export class Pace {
  private readonly finished: SlidingWindow[];
  private running = 0;

  constructor(readonly rates: readonly Rate[]) {
    this.finished = rates.map((rate) => new SlidingWindow(rate.count, rate.window));
  }

  /** When the next delivery may start: `now` if it may already, Infinity while only a running one's end can free a slot. */
  readyAt(now: number): number {
    return Math.max(now, ...this.finished.map((window) => window.roomAt(now, this.running)));
  }

  started(): void {
    this.running++;
  }

  ended(now: number): void {
    // A pace made afresh by a reload hears of deliveries started under the old one ending.
    this.running = Math.max(0, this.running - 1);
    for (const window of this.finished) window.add(now);
  }

  toString(): string {
    return this.rates.map(formatRate).join(', ');
  }
}

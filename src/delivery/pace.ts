import { formatRate, type Rate } from '../config/schema.js';
import { SlidingWindow } from '../policy/sliding-window.js';

/**
 * An upstream's declared rate (`rate: 30/1m`, or a list that must all hold):
 * the bridge starts no more deliveries than that in any window, so a
 * provider's limit is met by waiting in the queue rather than by refusals.
 * A sliding window, as for device limits, lets a short burst go at once and
 * never puts a 31st delivery inside a minute.
 */
export class Pace {
  private readonly windows: SlidingWindow[];

  constructor(readonly rates: readonly Rate[]) {
    this.windows = rates.map((rate) => new SlidingWindow(rate.count, rate.window));
  }

  /** When the next delivery may start: `now` if it may already. */
  readyAt(now: number): number {
    return Math.max(now, ...this.windows.map((window) => window.roomAt(now)));
  }

  started(now: number): void {
    for (const window of this.windows) window.add(now);
  }

  toString(): string {
    return this.rates.map(formatRate).join(', ');
  }
}

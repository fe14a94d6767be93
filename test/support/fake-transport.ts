import type { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import type { Clock as FakeClock } from '@sinonjs/fake-timers';
import type { Clock, Timer } from '../../src/delivery/clock.js';
import { DeliveryFailure, type Accepted, type Recipients, type Transport } from '../../src/delivery/transport.js';

/** What an upstream says to one send: the recipients it took and refused, or a failure of the whole send. */
export type Answer = Accepted | DeliveryFailure;

export interface RecordedSend {
  sender: string;
  to: string[];
  body: string;
  /** The fake time the scheduler handed the message over. */
  at: number;
  answered: boolean;
  answer(result: Answer): void;
}

/**
 * An upstream that records every send and answers as the test says: at once
 * through `respond` (given the send's number, from 1), or whenever the test
 * calls the send's answer(), to keep deliveries in flight.
 */
export class FakeTransport implements Transport {
  readonly sends: RecordedSend[] = [];
  active = 0;
  mostActive = 0;

  constructor(
    readonly name: string,
    readonly concurrency: number,
    private readonly clock: FakeClock,
    private readonly respond?: (send: RecordedSend, number: number) => Answer | undefined,
  ) {}

  async send(envelope: Recipients, body: () => Readable): Promise<Accepted> {
    this.active++;
    this.mostActive = Math.max(this.mostActive, this.active);
    const at = this.clock.now;
    try {
      const content = await text(body());
      const result = await new Promise<Answer>((resolve) => {
        const send: RecordedSend = {
          sender: envelope.sender,
          to: [...envelope.to],
          body: content,
          at,
          answered: false,
          answer(result) {
            send.answered = true;
            resolve(result);
          },
        };
        this.sends.push(send);
        const now = this.respond?.(send, this.sends.length);
        if (now) send.answer(now);
      });
      if (result instanceof DeliveryFailure) throw result;
      return result;
    } finally {
      this.active--;
    }
  }

  /** The sends not answered yet. */
  get waiting(): RecordedSend[] {
    return this.sends.filter((send) => !send.answered);
  }

  async close(): Promise<void> {}
}

/** Everyone accepted, in the provider's words. */
export function acceptAll(send: RecordedSend): Accepted {
  return { response: '250 2.0.0 OK', accepted: send.to, refused: [] };
}

/** A 4xx for the whole message, as from a provider that is busy; `unreachable` as when it cannot be reached at all. */
export function temporaryFailure(unreachable = false): DeliveryFailure {
  return unreachable
    ? new DeliveryFailure('temporary', 'connect ECONNREFUSED 127.0.0.1:465', undefined, true)
    : new DeliveryFailure('temporary', '451 4.3.0 Try again later', 451);
}

/** The scheduler's view of a fake clock from @sinonjs/fake-timers (whose timers have unref() under Node). */
export function schedulerClock(fake: FakeClock): Clock {
  return {
    now: () => fake.now,
    setTimeout: (callback, ms) => fake.setTimeout(callback, ms) as Timer,
    clearTimeout: (timer) => fake.clearTimeout(timer as Parameters<FakeClock['clearTimeout']>[0]),
    setInterval: (callback, ms) => fake.setInterval(callback, ms) as Timer,
    clearInterval: (timer) => fake.clearInterval(timer as Parameters<FakeClock['clearInterval']>[0]),
  };
}

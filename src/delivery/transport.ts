import type { Readable } from 'node:stream';
import type { Rate } from '../config/schema.js';
import type { Envelope, RecipientResult } from '../message.js';

/** What a transport needs of the envelope: the sender the provider sees, and who is still to get it. */
export type Recipients = Pick<Envelope, 'sender' | 'to'>;

/** What an upstream said about one message: which recipients it took and which it refused. */
export interface Accepted {
  response: string;
  /** The upstream that took the message, when it was a fallback rather than the device's own. */
  via?: string;
  accepted: string[];
  refused: RecipientResult[];
}

/** Whether trying the same message again later could succeed. */
export type FailureKind = 'temporary' | 'permanent';

/** A delivery that did not happen, with the upstream's own words where it gave any. */
export class DeliveryFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly code?: number,
    readonly unreachable = false,
    /**
     * Set when the provider turned down one more session (a 421 before the
     * message) while it served this many of ours: a sign of too many at once,
     * not of anything about this message.
     */
    readonly servedSessions?: number,
  ) {
    super(message);
  }
}

/** One way of handing a message on: an SMTP provider, or a capture directory. */
export interface Transport {
  readonly name: string;
  /** The most messages in flight to this upstream at once; the scheduler learns how many it takes, up to this. */
  readonly concurrency: number;
  /** The provider's declared rate limit, which the scheduler paces deliveries to. */
  readonly rate?: readonly Rate[];
  /** `body` may be called more than once: a dropped pooled connection is retried on a fresh one. */
  send(envelope: Recipients, body: () => Readable): Promise<Accepted>;
  close(): Promise<void>;
}

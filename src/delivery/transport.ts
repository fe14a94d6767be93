import type { Readable } from 'node:stream';
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
  ) {
    super(message);
  }
}

/** One way of handing a message on: an SMTP provider, or a capture directory. */
export interface Transport {
  readonly name: string;
  /** How many messages may be in flight to this upstream at once. */
  readonly concurrency: number;
  /** `body` may be called more than once: a dropped pooled connection is retried on a fresh one. */
  send(envelope: Recipients, body: () => Readable): Promise<Accepted>;
  close(): Promise<void>;
}

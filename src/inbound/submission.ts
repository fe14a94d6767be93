import type { Readable } from 'node:stream';
import type { Arrival } from '../message.js';

/** A reply for the device; `text` starts with its enhanced status code. */
export interface Reply {
  code: number;
  text: string;
}

/** A message made durable by the next stage, not yet handed on. */
export interface SpooledSubmission {
  readonly queueId: string;
  discard(): Promise<void>;
  /** Hands the message on and resolves with what the device should hear. */
  release(): Promise<Reply>;
}

/** What the inbound stage hands accepted messages to. */
export interface Intake {
  /** Resolves once the message is safely on disk; rejects with a Reply-carrying error otherwise. */
  spool(arrival: Arrival, body: Readable): Promise<SpooledSubmission>;
}

/** An error that carries the reply the device should get. */
export class ReplyError extends Error {
  constructor(
    readonly responseCode: number,
    text: string,
  ) {
    super(text);
  }
}

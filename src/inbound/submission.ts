import type { Readable } from 'node:stream';

/** Everything the bridge knows about a message when the device finishes DATA. */
export interface Submission {
  device: string;
  upstream: string;
  clientIp: string;
  /** The name the device gave in HELO/EHLO. */
  helo?: string;
  /** Whether the session opened with EHLO (ESMTP) rather than HELO. */
  esmtp: boolean;
  tls?: string;
  cipher?: string;
  saslMethod?: string;
  saslUsername?: string;
  from: string;
  to: string[];
  receivedAt: Date;
}

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
  spool(submission: Submission, body: Readable): Promise<SpooledSubmission>;
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

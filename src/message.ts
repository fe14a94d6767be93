/**
 * The one model of a message as it moves through the stages, after maddy's
 * ConnState + MsgMetadata: inbound fills in the connection and the device's
 * envelope, cleanup adds the sender the provider will see and the
 * Message-ID, the spool stores exactly that record, and delivery reads it.
 */

/** What the bridge knows about the connection a message arrived on. */
export interface ConnState {
  /** The device entry that authenticated, or that needs no AUTH from this address. */
  device: string;
  clientIp: string;
  /** The name the device gave in HELO/EHLO. */
  helo?: string;
  /** Whether the session opened with EHLO (ESMTP) rather than HELO. */
  esmtp: boolean;
  /** The negotiated TLS version (socket.getProtocol()), absent on a cleartext session. */
  tls?: string;
  cipher?: string;
  saslMethod?: string;
  saslUsername?: string;
}

/** Who sent a message and where it goes, as the device gave it at MAIL FROM and RCPT TO. */
export interface DeviceEnvelope {
  /** MAIL FROM exactly as the device gave it; '' is the null sender. */
  originalFrom: string;
  to: string[];
  upstream: string;
  /** When the device finished DATA, ISO 8601. */
  receivedAt: string;
}

/** The envelope after cleanup: what the provider is told. */
export interface Envelope extends DeviceEnvelope {
  /** MAIL FROM towards the provider: `originalFrom`, or the device's `rewrite_sender`. */
  sender: string;
}

/** A message as the inbound stage hands it over when DATA ends. */
export interface Arrival {
  conn: ConnState;
  envelope: DeviceEnvelope;
}

/** What cleanup makes of an arrival, and what the spool stores at the head of the message file. */
export interface MessageRecord {
  conn: ConnState;
  envelope: Envelope;
  /** The message's Message-ID header, the device's own or the one cleanup added. */
  messageId?: string;
}

/** What a provider said about one recipient it did not accept. `code` is absent when it never got to answer. */
export interface RecipientResult {
  address: string;
  code?: number;
  response: string;
}

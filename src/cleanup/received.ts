import { isIPv6 } from 'node:net';

/** What the Received: header says about how a message reached the bridge. */
export interface ReceivedFacts {
  helo?: string;
  /** EHLO (true) or plain HELO. */
  esmtp: boolean;
  clientIp: string;
  hostname: string;
  tls?: string;
  cipher?: string;
  saslMethod?: string;
  device: string;
  queueId: string;
  date: Date;
}

/** RFC 5322 date-time in UTC, e.g. "Mon, 23 Nov 2026 12:53:25 +0000". */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** RFC 3848 protocol name: ESMTP, plus S for TLS and A for AUTH. */
function protocol(facts: ReceivedFacts): string {
  if (!facts.esmtp) return 'SMTP';
  return `ESMTP${facts.tls ? 'S' : ''}${facts.saslMethod ? 'A' : ''}`;
}

/**
 * The trace header Postfix's cleanup would add (RFC 5321 4.4): who handed the
 * message over, how (TLS version and cipher, SASL mechanism; never a secret),
 * and the queue id that names it in our logs.
 */
export function receivedHeader(facts: ReceivedFacts): string {
  const address = isIPv6(facts.clientIp) ? `IPv6:${facts.clientIp}` : facts.clientIp;
  const tls = facts.tls ? ` (${facts.tls} with cipher ${facts.cipher ?? 'unknown'})` : '';
  const auth = facts.saslMethod ? `, authenticated with ${facts.saslMethod}` : '';
  return (
    `Received: from ${facts.helo || 'unknown'} ([${address}])\r\n` +
    `\tby ${facts.hostname} (smtp-bridge) with ${protocol(facts)}${tls}\r\n` +
    `\tid ${facts.queueId} (device ${facts.device}${auth});\r\n` +
    `\t${rfc5322Date(facts.date)}`
  );
}

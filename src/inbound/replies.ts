import { ReplyError, type Reply } from './submission.js';

/**
 * Every reply a device can hear from the bridge itself, in one table; the
 * protocol replies smtp-server makes on its own (503 bad sequence, 500
 * unknown command, ...) are not repeated here. Each text starts with its
 * enhanced status code (RFC 3463), chosen per rule: docs/replies.md lists
 * them for users, and that page is written from this table.
 */
export const replies = {
  authSucceeded: { code: 235, text: '2.7.0 Authentication successful' },
  /** One refusal for every credential problem, so the reply never tells an attacker which part was right. */
  authFailed: { code: 535, text: '5.7.8 Authentication credentials invalid' },
  authLockedOut: { code: 454, text: '4.7.0 Too many failed authentications, try again later' },
  authUnavailable: { code: 454, text: '4.7.0 Temporary authentication failure' },
  authAborted: { code: 501, text: '5.0.0 Authentication aborted' },
  digestInitialResponse: { code: 501, text: '5.5.4 Syntax: AUTH DIGEST-MD5 takes no initial response' },
  digestMalformed: { code: 501, text: '5.5.2 Malformed DIGEST-MD5 response' },
  encryptionRequired: { code: 538, text: '5.7.11 Encryption required for requested authentication mechanism' },
  authRequired: { code: 530, text: '5.7.0 Authentication required' },
  tlsTooOld: (minTls: string) => ({ code: 530, text: `5.7.0 This device must use ${minTls} or later` }),
  senderRefused: (from: string) => ({ code: 550, text: `5.7.1 Sender <${from}> not allowed for this device` }),
  recipientRefused: (to: string) => ({ code: 550, text: `5.7.1 Recipient <${to}> not allowed for this device` }),
  deviceFrozen: { code: 550, text: '5.7.1 Sending suspended for this device: it is frozen until the operator clears it' },
  budgetExceeded: (rule: string) => ({ code: 450, text: `4.7.1 Sending budget of this device exceeded (${rule}), try again later` }),
  tooManyRecipients: (max: number) => ({ code: 452, text: `4.5.3 Too many recipients for this device (at most ${max})` }),
  declaredSizeTooBig: (max: number) => ({
    code: 552,
    text: `5.3.4 Message size exceeds fixed maximum message size ${max} for this device`,
  }),
  messageTooBig: (max: number) => ({ code: 552, text: `5.3.4 Message exceeds fixed maximum message size ${max}` }),
  localError: { code: 451, text: '4.3.0 Local error in processing' },
  storageFull: { code: 452, text: '4.3.1 Insufficient system storage' },
  relayed: (providerReply: string) => ({ code: 250, text: `2.0.0 Relayed: ${providerReply}` }),
  queued: (queueId: string) => ({ code: 250, text: `2.0.0 Queued as ${queueId}` }),
  upstreamRefused: (providerReply: string) => {
    const enhanced = /\b(5\.\d{1,3}\.\d{1,3})\b/.exec(providerReply)?.[1] ?? '5.0.0';
    return { code: 554, text: `${enhanced} Upstream refused the message: ${providerReply}` };
  },
  tooManyConnections: (hostname: string) => ({ code: 421, text: `4.7.0 ${hostname} Too many connections, try again later` }),
  tooManyConnectionsFromClient: (hostname: string) => ({
    code: 421,
    text: `4.7.0 ${hostname} Too many connections from your address, try again later`,
  }),
  commandLineTooSlow: (hostname: string) => ({ code: 421, text: `4.4.2 ${hostname} Command line took too long, closing connection` }),
  sessionTooLong: (hostname: string) => ({ code: 421, text: `4.4.2 ${hostname} Session took too long, closing connection` }),
  tooManyJunkCommands: (hostname: string) => ({
    code: 421,
    text: `4.7.0 ${hostname} Too many commands without progress, closing connection`,
  }),
  tooManyErrors: (hostname: string) => ({ code: 421, text: `4.7.0 ${hostname} Too many errors, closing connection` }),
  /** smtp-server's own 421 on close says 4.4.2 (connection dropped); a server going down is 4.3.2 (system not accepting). */
  shuttingDownPrefix: '4.3.2',
} satisfies Record<string, Reply | string | ((...args: never[]) => Reply)>;

/** The reply as the error smtp-server's hooks take. */
export const refuse = (reply: Reply): ReplyError => new ReplyError(reply.code, reply.text);

/** The reply in the shape smtp-server's onAuth callback takes. */
export const authResponse = (reply: Reply): { responseCode: number; message: string } => ({
  responseCode: reply.code,
  message: reply.text,
});

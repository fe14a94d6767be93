import { replies } from './replies.js';

/**
 * smtp-server replies that read unlike the bridge's own: an "Error:" prefix
 * and, for the 501s, no enhanced status code. Each becomes the wording of
 * the bridge's replies (replies.ts, docs/replies.md), with its RFC 3463 code.
 */
const REWORDINGS: { code: number; smtpServer: RegExp; ours: (match: RegExpExecArray) => string }[] = [
  {
    code: 552,
    smtpServer: /^Error: message exceeds fixed maximum message size (\d+)$/,
    ours: ([, max]) => replies.messageTooBig(Number(max)).text,
  },
  { code: 501, smtpServer: /^Error: syntax: (EHLO|LHLO) hostname$/i, ours: ([, command]) => `5.5.4 Syntax: ${command} hostname` },
  { code: 501, smtpServer: /^Error: Syntax: HELO hostname$/, ours: () => '5.5.4 Syntax: HELO hostname' },
  { code: 501, smtpServer: /^Error: Bad hostname syntax$/, ours: () => '5.5.4 Bad hostname syntax' },
];

/** The reply text the device should hear instead of smtp-server's, or the text unchanged. */
export function reworded<T>(code: number, text: T): T | string {
  if (typeof text !== 'string') return text;
  for (const rewording of REWORDINGS) {
    const match = rewording.code === code ? rewording.smtpServer.exec(text) : null;
    if (match) return rewording.ours(match);
  }
  return text;
}

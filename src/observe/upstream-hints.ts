import { smtpReplyHint } from '../delivery/provider-hints.js';

/**
 * What a person should check for an upstream error, from the words the
 * provider or the operating system used: a known provider refusal's own hint
 * (the same one the delivery log lines carry) first, else the first rule here
 * that matches.
 */
const HINTS: [RegExp, string][] = [
  [
    /\b(535|534|530)\b|authentication|credentials|AUTH:/i,
    'the provider refused the account: check auth.user and the password (an app password, if the provider wants one)',
  ],
  [/ECONNREFUSED/, 'nothing listens there: check host and port (465 for tls: implicit, 587 for starttls)'],
  [/ENOTFOUND|EAI_AGAIN/, 'the host name does not resolve: check host and the DNS of this machine'],
  [/ETIMEDOUT|ETIMEOUT|timed? ?out/i, 'no answer in time: check host, port and any firewall on the way'],
  [
    /certificate|self.signed|unable to verify|CERT_/i,
    "the provider's certificate did not verify: check host (it must match the certificate) or ca_file",
  ],
  [
    /wrong version number|protocol version|handshake|ssl|tls/i,
    'the TLS handshake failed: check tls (implicit or starttls) against the port, and min_version',
  ],
  [/\b421\b|\b45[0-2]\b|too many|rate/i, 'the provider is throttling or busy: it should pass; if it lasts, lower concurrency'],
  [/\b55[0-4]\b|sender|relay/i, 'the provider refused the sender: set rewrite_sender/rewrite_from to the account address'],
];

export function hintFor(response: string): string {
  return (
    smtpReplyHint(response) ?? HINTS.find(([pattern]) => pattern.test(response))?.[1] ?? 'see the log lines "deferred" for this upstream'
  );
}

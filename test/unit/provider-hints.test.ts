import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oauthErrorHint, smtpReplyHint } from '../../src/delivery/provider-hints.js';

test('known provider refusals get a hint, also behind the command and upstream names failover puts in front', () => {
  const cases: [string, RegExp][] = [
    [
      'AUTH XOAUTH2: 535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.',
      /SmtpClientAuthenticationDisabled/,
    ],
    ['AUTH LOGIN: 535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.', /Authenticated SMTP/],
    ['m365: AUTH LOGIN: 550 5.7.30 Basic authentication is not supported for Client Submission.', /XOAUTH2/],
    ['AUTH XOAUTH2: 501 5.5.127 Token about to expire', /about to expire/],
    [
      'AUTH PLAIN: 534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor',
      /app password/,
    ],
    ['isp: connect ECONNREFUSED; gmail: AUTH PLAIN: 535-5.7.8 Username and Password not accepted.', /wrong account or app password/],
  ];
  for (const [reply, hint] of cases) assert.match(smtpReplyHint(reply) ?? '', hint, reply);
});

test('replies that speak for themselves get no hint', () => {
  for (const reply of ['550 5.1.1 No such user', 'connect ECONNREFUSED 127.0.0.1:465', '421 4.3.2 Service shutting down'])
    assert.equal(smtpReplyHint(reply), undefined, reply);
});

test('token endpoint errors: AADSTS codes before the generic OAuth codes', () => {
  assert.match(oauthErrorHint('invalid_client', 'AADSTS700025: Client is public so neither ...') ?? '', /remove client_secret/);
  assert.match(
    oauthErrorHint('invalid_client', 'AADSTS7000218: The request body must contain client_assertion or client_secret') ?? '',
    /Allow public client flows/,
  );
  assert.match(oauthErrorHint('invalid_grant', 'AADSTS700082: The refresh token has expired due to inactivity.') ?? '', /oauth login/);
  assert.match(oauthErrorHint('invalid_grant', 'Token has been expired or revoked.') ?? '', /Testing.*7 days/);
  assert.match(oauthErrorHint('invalid_client', 'The OAuth client was not found.') ?? '', /client_id or client_secret/);
  assert.equal(oauthErrorHint('temporarily_unavailable'), undefined);
});

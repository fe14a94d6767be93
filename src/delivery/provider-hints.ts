/**
 * What the providers' refusals mean and what to do about them: the codes are
 * terse, the fixes are in admin consoles nobody remembers.
 */

const SMTP_HINTS: { pattern: RegExp; hint: string }[] = [
  {
    pattern: /\b5\.7\.139\b/,
    hint: 'SMTP AUTH is disabled for this mailbox or tenant: enable "Authenticated SMTP" for the mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false) or in the tenant',
  },
  {
    pattern: /\b5\.7\.30\b/,
    hint: 'the provider no longer accepts a password (Basic authentication): use mechanism XOAUTH2 with an oauth block',
  },
  {
    pattern: /\b5\.5\.127\b/,
    hint: 'the access token was about to expire when used; this should not happen with the bridge refreshing 10 minutes ahead',
  },
  { pattern: /\b534[ -]5\.7\.9\b/, hint: 'Google wants an app password (needs 2-Step Verification) or XOAUTH2, not the account password' },
  { pattern: /\b535[ -]5\.7\.8\b/, hint: 'wrong account or app password (Google: the app password may have been revoked)' },
];

/** A hint for a provider's reply (`535 5.7.139 ...`), or undefined for a reply that speaks for itself. */
export function smtpReplyHint(response: string): string | undefined {
  return SMTP_HINTS.find(({ pattern }) => pattern.test(response))?.hint;
}

const OAUTH_HINTS: { pattern: RegExp; hint: string }[] = [
  { pattern: /AADSTS700025/, hint: 'the app is a public client and must not send a secret: remove client_secret' },
  {
    pattern: /AADSTS7000218/,
    hint: 'the app registration is not a public client: turn on "Allow public client flows", or give client_secret',
  },
  {
    pattern: /AADSTS700082|AADSTS50173/,
    hint: 'the refresh token expired or was revoked (inactivity, password change): run oauth login again',
  },
  { pattern: /AADSTS65001/, hint: 'nobody has consented to the app using SMTP.Send: run oauth login, or have an admin grant consent' },
  { pattern: /AADSTS50076|AADSTS50079/, hint: 'the tenant demands MFA for this sign-in: run oauth login again' },
  { pattern: /^invalid_client\b/, hint: 'client_id or client_secret is wrong, or the secret has expired' },
  {
    pattern: /^invalid_grant\b/,
    hint: 'the refresh token is no longer valid (revoked, expired, unused too long, password changed; a Google app left in "Testing" loses it after 7 days): run smtp-bridge oauth login UPSTREAM',
  },
  { pattern: /^unauthorized_client\b/, hint: 'the app is not allowed this grant: check the app registration' },
];

/** A hint for a token endpoint's `error` and `error_description`. */
export function oauthErrorHint(error: string, description = ''): string | undefined {
  const text = `${error} ${description}`;
  return OAUTH_HINTS.find(({ pattern }) => pattern.test(text))?.hint;
}

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import type { SmtpUpstream } from '../../src/config/schema.js';
import { oauthAccountSettings } from '../../src/delivery/oauth/providers.js';

/** Lines 1-6; the upstream under test starts at line 7 as `upstreams.mail`. */
const HEAD = [
  'listen: [{ port: 2525, tls: none }]',
  'devices:',
  '  printer: { auth: none, networks: [192.168.1.0/24], senders: ["p@example.com"], upstream: mail }',
  'upstreams:',
  '  backup: { host: smtp.example.net, tls: implicit, auth: { user: u@example.net, password: pw } }',
  '  mail:',
];

function write(t: TestContext, lines: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-oauth-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.yaml');
  writeFileSync(file, `${[...HEAD, ...lines].join('\n')}\n`, { mode: 0o600 });
  return file;
}

async function issuesOf(t: TestContext, lines: string[]): Promise<string[]> {
  try {
    await loadConfig(write(t, lines));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  assert.fail('the config loaded, but it should have been refused');
}

async function mailUpstream(t: TestContext, lines: string[]): Promise<{ upstream: SmtpUpstream; dir: string }> {
  const file = write(t, lines);
  const { config } = await loadConfig(file);
  return { upstream: config.upstreams.mail as SmtpUpstream, dir: join(file, '..') };
}

const smtp = ['    host: smtp.office365.com', '    tls: starttls'];

test('XOAUTH2 without an oauth block, or with a password beside it, is refused at the key', async (t) => {
  assert.deepEqual(await issuesOf(t, [...smtp, '    auth: { user: a@example.com, mechanism: XOAUTH2 }']), [
    'upstreams.mail.auth: mechanism XOAUTH2 needs an oauth block (provider or token_url, client_id) (line 9)',
  ]);
  assert.deepEqual(
    await issuesOf(t, [
      ...smtp,
      '    auth:',
      '      user: a@example.com',
      '      mechanism: XOAUTH2',
      '      password: old',
      '      oauth: { provider: microsoft, client_id: abc }',
    ]),
    ['upstreams.mail.auth.password: XOAUTH2 takes no password; the oauth block says how to get tokens (line 12)'],
  );
});

test('an oauth block needs XOAUTH2, a provider or token_url, and a token_url that is https or loopback', async (t) => {
  assert.deepEqual(
    await issuesOf(t, [...smtp, '    auth: { user: a@example.com, password: x, oauth: { provider: google, client_id: abc } }']),
    ['upstreams.mail.auth.oauth: an oauth block needs mechanism: XOAUTH2 (line 9)'],
  );
  assert.deepEqual(await issuesOf(t, [...smtp, '    auth: { user: a@example.com, mechanism: XOAUTH2, oauth: { client_id: abc } }']), [
    'upstreams.mail.auth.oauth: give provider (microsoft or google) or token_url (line 9)',
  ]);
  assert.deepEqual(
    await issuesOf(t, [
      ...smtp,
      '    auth: { user: a@example.com, mechanism: XOAUTH2, oauth: { token_url: "http://idp.example.com/token", client_id: abc } }',
    ]),
    [
      'upstreams.mail.auth.oauth.token_url: must be https (plain http only to 127.0.0.1, ::1 or localhost), got "http://idp.example.com/token" (line 9)',
    ],
  );
});

test('client_credentials needs a secret and is not for Google; tenant is for Microsoft only', async (t) => {
  assert.deepEqual(
    await issuesOf(t, [
      ...smtp,
      '    auth:',
      '      user: a@example.com',
      '      mechanism: XOAUTH2',
      '      oauth: { provider: google, tenant: contoso, client_id: abc, grant: client_credentials }',
    ]),
    [
      'upstreams.mail.auth.oauth.tenant: tenant is for provider: microsoft only (line 12)',
      'upstreams.mail.auth.oauth.grant: Google has no client_credentials grant for mail; use refresh_token (line 12)',
      'upstreams.mail.auth.oauth.grant: client_credentials needs a client secret (an app-only client is confidential) (line 12)',
    ],
  );
});

test('Microsoft preset: tenant "organizations", delegated SMTP.Send scope, no secret, token file next to the config', async (t) => {
  const { upstream, dir } = await mailUpstream(t, [
    ...smtp,
    '    auth: { user: a@example.com, mechanism: XOAUTH2, oauth: { provider: microsoft, client_id: abc } }',
  ]);
  const account = oauthAccountSettings('mail', upstream.auth.user, upstream.auth.oauth!);
  assert.equal(account.server.token_endpoint, 'https://login.microsoftonline.com/organizations/oauth2/v2.0/token');
  assert.equal(account.server.device_authorization_endpoint, 'https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode');
  assert.equal(account.scope, 'https://outlook.office.com/SMTP.Send offline_access');
  assert.equal(account.clientSecret, undefined);
  assert.equal(account.grant, 'refresh_token');
  assert.equal(account.tokenFile, join(dir, 'tokens', 'mail.json'));
  assert.equal(account.idleRefresh, 86_400_000);
});

test('Microsoft app-only: the .default scope of Exchange Online, the secret read from the environment', async (t) => {
  process.env.TEST_OAUTH_SECRET = 'from-env';
  t.after(() => delete process.env.TEST_OAUTH_SECRET);
  const { upstream } = await mailUpstream(t, [
    ...smtp,
    '    auth:',
    '      user: a@example.com',
    '      mechanism: XOAUTH2',
    '      oauth: { provider: microsoft, tenant: contoso.onmicrosoft.com, client_id: abc, client_secret_env: TEST_OAUTH_SECRET, grant: client_credentials }',
  ]);
  const account = oauthAccountSettings('mail', upstream.auth.user, upstream.auth.oauth!);
  assert.equal(account.server.token_endpoint, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
  assert.equal(account.scope, 'https://outlook.office365.com/.default');
  assert.equal(account.clientSecret, 'from-env');
});

test('Google preset: mail.google.com scope, offline access with consent, no device endpoint', async (t) => {
  const { upstream } = await mailUpstream(t, [
    '    host: smtp.gmail.com',
    '    tls: implicit',
    '    auth: { user: a@gmail.com, mechanism: XOAUTH2, oauth: { provider: google, client_id: abc, client_secret: desktop-secret } }',
  ]);
  const account = oauthAccountSettings('mail', upstream.auth.user, upstream.auth.oauth!);
  assert.equal(account.server.token_endpoint, 'https://oauth2.googleapis.com/token');
  assert.equal(account.server.device_authorization_endpoint, undefined);
  assert.equal(account.scope, 'https://mail.google.com/');
  assert.deepEqual(account.authorizeParameters, { access_type: 'offline', prompt: 'consent' });
});

test('fallback names other smtp upstreams, one level deep', async (t) => {
  assert.deepEqual(await issuesOf(t, [...smtp, '    auth: { user: a@example.com, password: x }', '    fallback: [mail, nowhere]']), [
    'upstreams.mail.fallback[0]: an upstream cannot be its own fallback (line 10)',
    'upstreams.mail.fallback[1]: no smtp upstream named "nowhere" (line 10)',
  ]);
  const { upstream } = await mailUpstream(t, [...smtp, '    auth: { user: a@example.com, password: x }', '    fallback: [backup]']);
  assert.deepEqual(upstream.fallback, ['backup']);
});

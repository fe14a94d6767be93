import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestBridge } from '../support/bridge.js';
import { readTokenFile } from '../support/oauth.js';
import { waitUntil } from '../support/wait.js';
import { OAUTH_FROM, withOAuthBridge, type OAuthBridgeOptions, type OAuthSetup } from '../support/oauth-bridge.js';
import { sendThrough } from '../support/send.js';
import { makePki, type Pki } from '../support/pki.js';

/**
 * XOAUTH2 towards a provider that takes nothing else, with tokens from a real
 * token endpoint on loopback: first use, refresh under load, a refused token,
 * idle refresh, public and confidential clients.
 */

let dir: string;
let pki: Pki;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-oauth-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

const FROM = OAUTH_FROM;

function withOAuth(options: Omit<OAuthBridgeOptions, 'pki'>, body: (setup: OAuthSetup) => Promise<void>): Promise<void> {
  return withOAuthBridge({ pki, ...options }, body);
}

const send = (bridge: TestBridge) => sendThrough(bridge, FROM, 'oauth');

const delivered = (bridge: TestBridge) => bridge.logs.filter((line) => line.msg === 'delivered').length;

test('first use: the refresh token from the file buys an access token, XOAUTH2 succeeds, the rotated token is saved 0600', async () => {
  await withOAuth({}, async ({ endpoint, upstream, bridge, tokenFile, refreshToken }) => {
    const result = await send(bridge);
    assert.equal(result.code, 250, result.transcript);
    await upstream.waitForMessages(1, 10_000);
    assert.equal(endpoint.refreshes(), 1);
    assert.deepEqual(
      upstream.authAttempts.map((a) => [a.method, a.ok]),
      [['XOAUTH2', true]],
    );
    const saved = await readTokenFile(tokenFile);
    assert.notEqual(saved.refresh_token, refreshToken, 'the rotated refresh token was not saved');
    assert.ok(endpoint.issued.includes(saved.refresh_token!));
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
    // A public client: no client_secret parameter at all, not even an empty one (AADSTS700025).
    assert.ok(endpoint.requests.length > 0);
    assert.ok(endpoint.requests.every((r) => !r.secretSent));
  });
});

test('expiry during a burst of 50 messages at concurrency 5: exactly one refresh, no dead token used', async () => {
  await withOAuth(
    {
      endpoint: { accessLifetimeMs: 1500 },
      extra: ['concurrency: 5', 'idle_timeout: 200'],
      delivery: 'sync_wait: 0, retry_initial: 200, retry_max: 1s, shutdown_wait: 2s',
    },
    async ({ endpoint, upstream, bridge }) => {
      assert.equal((await send(bridge)).code, 250);
      await upstream.waitForMessages(1, 10_000);
      assert.equal(endpoint.refreshes(), 1);
      // The token dies (the endpoint advertised it 10 minutes longer, so the bridge sees it due exactly now);
      // the next one lives long enough for the whole burst, however slow the machine.
      await sleep(1800);
      endpoint.setAccessLifetime(120_000);
      const results = await Promise.all(Array.from({ length: 50 }, () => send(bridge)));
      assert.ok(
        results.every((r) => r.code === 250),
        results.map((r) => r.transcript).find((t) => !/250/.test(t)),
      );
      await upstream.waitForMessages(51, 30_000);
      assert.equal(endpoint.refreshes(), 2, 'five deliveries wanting a token at once must share one refresh');
      assert.ok(
        upstream.authAttempts.every((a) => a.ok),
        'a dead token was offered',
      );
      // How many logins depends on how often pooled connections idled out on a busy machine; that every one used a live token is what counts.
      assert.ok(upstream.authAttempts.length >= 2, `${upstream.authAttempts.length} logins`);
      await waitUntil('51 delivered lines', () => delivered(bridge) === 51);
    },
  );
});

for (const refusal of ['535', '334'] as const) {
  const as = refusal === '535' ? '535, as Microsoft' : '334 error challenge, as Google';
  test(`provider refuses a token it revoked (${as}): one refresh, one retry, delivered`, async () => {
    await withOAuth({ refusal, extra: ['idle_timeout: 100'] }, async ({ endpoint, upstream, bridge }) => {
      assert.equal((await send(bridge)).code, 250);
      await upstream.waitForMessages(1, 10_000);
      await sleep(300); // the pooled connection is closed: the next message logs in again
      endpoint.revokeAccessTokens();
      const result = await send(bridge);
      assert.equal(result.code, 250, result.transcript);
      await upstream.waitForMessages(2, 10_000);
      assert.equal(endpoint.refreshes(), 2);
      assert.deepEqual(
        upstream.authAttempts.map((a) => a.ok),
        [true, false, true],
      );
      const lines = bridge.logs.filter((l) => l.msg === 'delivered');
      assert.deepEqual(
        lines.map((l) => l.attempt),
        [1, 1],
        'the second message went out on its first attempt',
      );
      assert.equal(bridge.logs.filter((l) => l.msg === 'deferred').length, 0);
    });
  });
}

test('idle: the refresh token is used every idle_refresh even with no mail, and each rotation is kept', async () => {
  await withOAuth({ oauth: ['idle_refresh: 700'] }, async ({ endpoint, bridge, tokenFile }) => {
    await waitUntil('three idle refreshes', () => endpoint.refreshes() >= 3, 8000);
    assert.ok(
      endpoint.requests.every((r) => r.outcome === 'ok'),
      'a rotated-out refresh token was used',
    );
    assert.ok(bridge.logs.some((l) => l.msg === 'oauth token refreshed' && l.reason === 'idle'));
    const saved = await readTokenFile(tokenFile);
    assert.ok(endpoint.issued.includes(saved.refresh_token!));
  });
});

test('client_credentials (app-only): a confidential client sends its secret, needs no login, delivers', async () => {
  const secretFile = join(dir, 'client-secret');
  await writeFile(secretFile, 'app-secret\n', { mode: 0o600 });
  await withOAuth(
    { endpoint: { clientSecret: 'app-secret' }, oauth: ['grant: client_credentials', `client_secret_file: "${secretFile}"`] },
    async ({ endpoint, upstream, bridge }) => {
      assert.equal((await send(bridge)).code, 250);
      await upstream.waitForMessages(1, 10_000);
      assert.ok(endpoint.requests.length >= 1);
      assert.ok(endpoint.requests.every((r) => r.grant_type === 'client_credentials' && r.secretSent && r.outcome === 'ok'));
    },
  );
});

test('idle refresh against an unreachable token endpoint: one try per interval, never a tight loop', async () => {
  await withOAuth({ oauth: ['idle_refresh: 400'] }, async ({ endpoint, bridge }) => {
    await endpoint.close();
    await sleep(2000);
    const failures = bridge.logs.filter((l) => l.msg === 'oauth token refresh failed');
    assert.ok(failures.length >= 2 && failures.length <= 7, `${failures.length} refresh attempts in 2 s`);
    assert.match(String(failures[0].err), /token endpoint unreachable/);
  });
});

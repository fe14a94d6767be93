import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readTokenFile } from '../support/oauth.js';
import { waitUntil } from '../support/wait.js';
import { OAUTH_FROM, withOAuthBridge, type OAuthSetup } from '../support/oauth-bridge.js';
import { makePki, type Pki } from '../support/pki.js';
import { runCli, startCli } from '../support/cli.js';
import { sendThrough } from '../support/send.js';
import type { TokenEndpointOptions } from '../support/token-endpoint.js';

/**
 * `smtp-bridge oauth login` and `oauth status` as a user runs them, against a
 * real token endpoint, with a bridge running on the same config: the
 * device-code flow, the authorization-code flow with PKCE through a loopback
 * redirect (a scripted browser follows it) or a pasted address, and the
 * recovery from a revoked refresh token without a restart.
 */

let dir: string;
let pki: Pki;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-oauth-login-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

const FROM = OAUTH_FROM;

interface Setup extends OAuthSetup {
  alertFile: string;
}

function withLoginSetup(
  options: {
    endpoint?: TokenEndpointOptions;
    flow: 'device' | 'browser';
    seedRefreshToken?: boolean;
    upstreamUser?: string;
    delivery?: string;
  },
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const alertFile = join(dir, `alerts-${process.pid}-${Date.now()}.jsonl`);
  return withOAuthBridge(
    {
      pki,
      endpoint: options.endpoint,
      login: options.flow,
      upstreamUser: options.upstreamUser,
      seed: options.seedRefreshToken ?? false,
      delivery: options.delivery ?? 'sync_wait: 300, retry_initial: 300, retry_max: 1s, shutdown_wait: 2s',
      top: `alert: { command: 'cat >> "${alertFile}"; echo >> "${alertFile}"' }`,
    },
    (setup) => body({ ...setup, alertFile }),
  );
}

/** Runs `oauth login` with the device-code flow and approves the code, as the user would in a browser elsewhere. */
async function deviceLogin(setup: Setup): Promise<string> {
  const result = await deviceLoginResult(setup);
  assert.equal(result.code, 0, result.stdout + result.stderr);
  return result.stdout;
}

async function deviceLoginResult({ endpoint, bridge, outputs }: Setup): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = startCli(['oauth', 'login', 'provider', '-c', bridge.file], 60_000);
  cli.child.stdin!.end();
  const [, url, code] = await cli.waitForOutput(/open (\S+) in any browser and enter the code (\S+)/);
  assert.equal(url, `${endpoint.url}/device-login`);
  endpoint.approveDevice(code);
  const result = await cli.done;
  outputs.push(result.stdout, result.stderr);
  return result;
}

function alerts(file: string): { event: string; upstream: string; reason: string }[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => JSON.parse(line) as { event: string; upstream: string; reason: string });
  } catch {
    return [];
  }
}

test('device-code flow: prints the address and code, waits out authorization_pending and slow_down, writes a 0600 token file', async () => {
  await withLoginSetup({ flow: 'device', endpoint: { slowDownOnce: true } }, async (setup) => {
    const { endpoint, upstream, bridge, tokenFile } = setup;
    await waitUntil('the not-logged-in warning at start', () =>
      bridge.logs.some((l) => l.level === 'warn' && l.upstream === 'provider' && /^not logged in yet/.test(l.msg)),
    );
    const stdout = await deviceLogin(setup);
    assert.match(stdout, /logged in: upstream provider; refresh token saved in .*provider\.json/);
    assert.match(stdout, /access token valid until \d{4}-\d\d-\d\dT/);
    assert.match(stdout, /the provider accepted XOAUTH2 as relay@example\.net/);
    const polls = endpoint.requests.filter((r) => r.grant_type === 'urn:ietf:params:oauth:grant-type:device_code');
    assert.deepEqual(
      polls.map((r) => r.outcome),
      [...polls.slice(0, -2).map(() => 'authorization_pending'), 'slow_down', 'ok'],
    );
    assert.ok(
      polls.every((r) => !r.secretSent),
      'a public client sent a client_secret',
    );
    const saved = await readTokenFile(tokenFile);
    assert.ok(endpoint.issued.includes(saved.refresh_token!));
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
    // The running bridge uses the new login at once.
    assert.equal((await sendThrough(bridge, FROM, 'after-login')).code, 250);
    await upstream.waitForMessages(1, 10_000);
    const check = await runCli(['check-config', '-c', bridge.file]);
    setup.outputs.push(check.stdout, check.stderr);
    assert.match(
      check.stdout,
      /with XOAUTH2, oauth http:\/\/127\.0\.0\.1:\d+\/token \(refresh_token, public client, tokens in .*provider\.json\)/,
    );
    const status = await runCli(['oauth', 'status', '-c', bridge.file]);
    setup.outputs.push(status.stdout, status.stderr);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^provider +relay@example\.net +refresh_token +\d{4}-.* logged in/m);
  });
});

test('authorization code + PKCE: a browser on this machine follows the redirect to the loopback listener', async () => {
  await withLoginSetup({ flow: 'browser' }, async (setup) => {
    const { endpoint, bridge, tokenFile } = setup;
    const cli = startCli(['oauth', 'login', 'provider', '-c', bridge.file], 60_000);
    const [authorizeUrl] = await cli.waitForOutput(/http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+/);
    const url = new URL(authorizeUrl);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('redirect_uri')!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    // The scripted browser: the endpoint consents at once and redirects to the loopback listener.
    const page = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(10_000) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /signed in/);
    const result = await cli.done;
    cli.child.stdin!.destroy();
    setup.outputs.push(result.stdout, result.stderr);
    assert.equal(result.code, 0, cli.output());
    const exchange = endpoint.requests.find((r) => r.grant_type === 'authorization_code');
    assert.equal(exchange?.outcome, 'ok', 'the endpoint refused the code or the PKCE verifier');
    assert.ok(endpoint.issued.includes((await readTokenFile(tokenFile)).refresh_token!));
  });
});

test('authorization code + PKCE: the browser on another machine, the user pastes the address it ended on', async () => {
  await withLoginSetup({ flow: 'browser' }, async (setup) => {
    const { endpoint, bridge, tokenFile } = setup;
    const cli = startCli(['oauth', 'login', 'provider', '-c', bridge.file], 60_000);
    const [authorizeUrl] = await cli.waitForOutput(/http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+/);
    await cli.waitForOutput(/paste it here/);
    // That browser cannot reach this machine's 127.0.0.1: it stops at the redirect.
    const page = await fetch(authorizeUrl, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    assert.equal(page.status, 302);
    const landed = page.headers.get('location')!;
    // A stray request on the loopback port and an address from another login are turned away; the login waits on.
    const redirect = new URL(landed);
    const stray = await fetch(`${redirect.origin}/?code=forged&state=guess`, { signal: AbortSignal.timeout(5000) });
    assert.equal(stray.status, 404);
    cli.child.stdin!.write(`${redirect.origin}/?code=old&state=from-another-login\n`);
    await cli.waitForOutput(/That is not the address/);
    cli.child.stdin!.end(`${landed}\n`);
    const result = await cli.done;
    setup.outputs.push(result.stdout, result.stderr);
    assert.equal(result.code, 0, cli.output());
    assert.equal(endpoint.requests.find((r) => r.grant_type === 'authorization_code')?.outcome, 'ok');
    assert.ok(endpoint.issued.includes((await readTokenFile(tokenFile)).refresh_token!));
  });
});

test('invalid_grant: alert once, mail stays queued, oauth status says why; oauth login fixes it without a restart', async () => {
  // Retries an hour apart: only the login itself can make the queued mail go out now.
  const delivery = 'sync_wait: 300, retry_initial: 1h, retry_max: 1h, shutdown_wait: 2s';
  await withLoginSetup({ flow: 'device', seedRefreshToken: true, delivery }, async (setup) => {
    const { endpoint, upstream, bridge, alertFile } = setup;
    endpoint.revokeRefreshTokens();
    for (let i = 0; i < 3; i++) {
      const result = await sendThrough(bridge, FROM, 'revoked');
      assert.equal(result.code, 250, result.transcript);
      assert.match(result.response ?? '', /Queued as/);
    }
    await waitUntil('the first attempt of each message', () => bridge.logs.filter((l) => l.msg === 'deferred').length === 3);
    const failed = bridge.logs.filter((l) => l.msg === 'oauth token refresh failed');
    assert.equal(failed[0].error, 'invalid_grant');
    assert.match(String(failed[0].error_description), /AADSTS70000/);
    assert.match(String(failed[0].hint), /oauth login/);
    // Refused for good: the provider is not asked again until the token file changes.
    assert.equal(endpoint.requests.filter((r) => r.grant_type === 'refresh_token').length, 1);
    await waitUntil('the alert', () => alerts(alertFile).length > 0);
    assert.deepEqual(
      alerts(alertFile).map((a) => [a.event, a.upstream]),
      [['upstream-auth-failed', 'provider']],
    );
    assert.match(alerts(alertFile)[0].reason, /invalid_grant/);
    assert.equal(upstream.messages.length, 0);

    const before = await runCli(['oauth', 'status', 'provider', '-c', bridge.file]);
    setup.outputs.push(before.stdout, before.stderr);
    assert.match(before.stdout, /refresh failing +token endpoint refused: invalid_grant/);
    const queue = await runCli(['queue', 'list', '-c', bridge.file]);
    setup.outputs.push(queue.stdout, queue.stderr);
    assert.match(queue.stdout, /3 queued/);

    const stdout = await deviceLogin(setup);
    assert.match(stdout, /3 queued messages for provider due now/);
    await upstream.waitForMessages(3, 15_000);
    await waitUntil('the recovery alert', () => alerts(alertFile).length === 2);
    assert.equal(alerts(alertFile)[1].event, 'upstream-auth-recovered');
    assert.ok(bridge.logs.some((l) => l.msg === 'oauth token file replaced, using the new login'));
    const afterLogin = await runCli(['oauth', 'status', 'provider', '-c', bridge.file, '--json']);
    setup.outputs.push(afterLogin.stdout, afterLogin.stderr);
    assert.equal((JSON.parse(afterLogin.stdout) as { state: string }[])[0].state, 'logged in');
    setup.outputs.push(await readFile(alertFile, 'utf8'));
  });
});

test('a sign-in the provider does not accept for auth.user (another account signed in): exit 1 with its reply', async () => {
  await withLoginSetup({ flow: 'device', upstreamUser: 'someone-else@example.net' }, async (setup) => {
    const result = await deviceLoginResult(setup);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /the provider did not accept XOAUTH2 as relay@example\.net: AUTH XOAUTH2: 535 5\.7\.3/);
    assert.ok((await readTokenFile(setup.tokenFile)).refresh_token, 'the token file was not kept');
  });
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pythonSmtplib } from '../support/python-client.js';
import { assertNoTokens, readTokenFile, writeTokenFile } from '../support/oauth.js';
import { makePki, type Pki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { spawnBridge } from '../support/process.js';
import { oauthAuthYaml, providerYaml } from '../support/provider-yaml.js';
import { startTokenEndpoint } from '../support/token-endpoint.js';
import { startUpstream } from '../support/upstream.js';

/**
 * The bridge as a separate process, killed with SIGKILL right after a
 * refresh that rotated the refresh token: the provider has already forgotten
 * the old one, so the new one must be on disk before anything else.
 */

let dir: string;
let pki: Pki;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-oauth-crash-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

test('kill -9 right after a rotating refresh: the restarted bridge refreshes with the new refresh token and delivers', async () => {
  // 1.5 s of real life, advertised 10 minutes longer: due for refresh again soon after the restart.
  const endpoint = await startTokenEndpoint({ accessLifetimeMs: 1500, rotate: true });
  const upstream = await startUpstream({ pki, mode: 'implicit', xoauth2: { user: 'relay@example.net', isLive: endpoint.isLive } });
  const outputs: string[] = [];
  try {
    const listenPort = await freePort();
    const tokenFile = join(dir, 'tokens', 'provider.json');
    const first = endpoint.issueRefreshToken();
    await writeTokenFile(tokenFile, first);
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      `hostname: bridge.test
listen:
  - { port: ${listenPort}, tls: none, address: 127.0.0.1 }
tls: { cert_file: bridge.crt, key_file: bridge.key }
delivery: { sync_wait: 5s, retry_initial: 200, retry_max: 1s, shutdown_wait: 1s }
upstreams:
${providerYaml({ name: 'provider', port: upstream.port, caFile: pki.caFile, auth: oauthAuthYaml(endpoint) })}devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [sensor@example.net], upstream: provider }
`,
    );

    // A token file never refreshed gets its first idle refresh at start.
    const crashed = await spawnBridge(config, 1);
    await crashed.waitForLog((line) => line.msg === 'oauth token refreshed');
    await crashed.kill('SIGKILL');
    outputs.push(crashed.stderr, ...crashed.logs.map((line) => JSON.stringify(line)));
    assert.equal(endpoint.refreshes(), 1);
    const saved = await readTokenFile(tokenFile);
    assert.notEqual(saved.refresh_token, first);
    assert.ok(endpoint.issued.includes(saved.refresh_token!));

    await sleep(2000); // the access token on disk is now due for refresh
    const restarted = await spawnBridge(config, 1);
    try {
      const result = await pythonSmtplib({
        host: '127.0.0.1',
        port: listenPort,
        security: 'none',
        from: 'sensor@example.net',
        to: ['owner@example.com'],
        message: `Message-ID: <oauth-crash-${process.pid}@test>\r\nSubject: after the crash\r\n\r\nok\r\n`,
      });
      assert.equal(result.code, 250, result.transcript);
      await upstream.waitForMessages(1, 10_000);
    } finally {
      await restarted.kill('SIGTERM');
      outputs.push(restarted.stderr, ...restarted.logs.map((line) => JSON.stringify(line)));
    }
    assert.equal(endpoint.refreshes(), 2);
    assert.deepEqual(
      endpoint.requests.filter((r) => r.outcome !== 'ok'),
      [],
      'a refresh token the provider had already rotated out was used',
    );
    assertNoTokens(outputs, endpoint.issued);
  } finally {
    await upstream.close();
    await endpoint.close();
  }
});

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { pythonSmtplib } from '../support/python-client.js';
import { makePki, makeSelfSigned, type Pki } from '../support/pki.js';
import { CLI } from '../support/cli.js';
import { providerYaml } from '../support/provider-yaml.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhook, type Webhook } from '../support/webhook.js';

const exec = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Setup {
  bridge: TestBridge;
  webhook: Webhook;
  pki: Pki;
  provider: Upstream;
}

/** A bridge in front of one provider, alerting a loopback webhook, with delivery timings short enough to watch. */
async function alertingBridge(delivery: string, prepare?: (dir: string) => Promise<void>, password?: string): Promise<Setup> {
  const pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  cleanups.push(() => rm(pkiDir, { recursive: true, force: true }));
  const pki = await makePki(pkiDir);
  const provider = await startUpstream({ pki, mode: 'implicit' });
  cleanups.push(() => provider.close());
  const webhook = await startWebhook();
  cleanups.push(() => webhook.close());
  const bridge = await startTestBridge({
    yaml: `upstreams:
${providerYaml({ name: 'provider', port: provider.port, caFile: pki.caFile, password })}devices:
  doorphone: { password: door-secret, senders: [door@example.net], upstream: provider }
delivery: { ${delivery} }
alert:
  webhook: ${webhook.url}
  upstream_failing_after: 1s
  queue_age: 1h
`,
    prepare,
  });
  cleanups.push(() => bridge.stop());
  return { bridge, webhook, pki, provider };
}

const send = (bridge: TestBridge) =>
  pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.starttls!,
    security: 'starttls',
    mechanism: 'PLAIN',
    username: 'doorphone',
    password: 'door-secret',
    from: 'door@example.net',
    to: ['owner@example.com'],
    message: 'Subject: ring\r\n\r\nSomeone is at the door.\r\n',
  });

const events = (webhook: Webhook, name: string) => webhook.bodies.filter((body) => body.event === name);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('an upstream outage fires exactly one alert, however many messages wait, and one when it ends', async () => {
  const setup = await alertingBridge('retry_initial: 200ms, retry_max: 400ms, max_age: 1h');
  const { bridge, webhook, pki } = setup;
  const port = setup.provider.port;
  await setup.provider.close();
  for (let i = 0; i < 3; i++) assert.ok((await send(bridge)).ok);

  await webhook.until((bodies) => bodies.some((body) => body.event === 'upstream-failing'), 10_000);
  // Several more failed attempts while the outage lasts: still one alert.
  await sleep(2000);
  const [failing] = events(webhook, 'upstream-failing');
  assert.equal(events(webhook, 'upstream-failing').length, 1);
  assert.equal(failing.upstream, 'provider');
  assert.equal(failing.hostname, 'bridge.test');
  assert.match(String(failing.error), /ECONNREFUSED/);
  assert.match(String(failing.summary), /^smtp-bridge bridge\.test: upstream provider failing since .*Hint: nothing listens there/);

  const provider = await startUpstream({ pki, mode: 'implicit', port });
  cleanups.push(() => provider.close());
  await provider.waitForMessages(3, 15_000);
  await webhook.until((bodies) => bodies.some((body) => body.event === 'upstream-recovered'), 10_000);
  await sleep(500);
  assert.deepEqual(
    webhook.bodies.map((body) => body.event),
    ['upstream-failing', 'upstream-recovered'],
  );
  assert.match(String(events(webhook, 'upstream-recovered')[0].summary), /upstream provider works again/);
});

test('messages that expire fire one alert for the incident, not one per message', async () => {
  const { bridge, webhook, provider } = await alertingBridge('retry_initial: 200ms, retry_max: 400ms, max_age: 1s');
  await provider.close();
  for (let i = 0; i < 2; i++) assert.ok((await send(bridge)).ok);
  await webhook.until(() => events(webhook, 'message-failed').length > 0, 10_000);
  // Both messages expire within a second of each other; give the second time to.
  await sleep(2500);
  const failed = events(webhook, 'message-failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].reason, 'expired');
  assert.equal(failed[0].device, 'doorphone');
  assert.match(String(failed[0].summary), /a message from doorphone expired undelivered via provider/);
  assert.equal(bridge.logs.filter((line) => line.msg === 'expired').length, 2);
});

test('smtp-bridge alert test delivers a test event to the webhook and says so', async () => {
  const { bridge, webhook } = await alertingBridge('retry_initial: 1s');
  const out = await exec(process.execPath, [CLI, 'alert', 'test', '-c', bridge.file], { timeout: 20_000 });
  assert.match(out.stdout, /^webhook +sent$/m);
  await webhook.until(() => events(webhook, 'test').length === 1, 5000);
  assert.match(String(events(webhook, 'test')[0].summary), /test alert/);
});

test('a listener certificate within 14 days of its end fires one alert, not one per check', async () => {
  let expires = '';
  const { webhook } = await alertingBridge('retry_initial: 1s', async (dir) => {
    // The test PKI's certificates live two days: well inside the warning window.
    const pair = await makeSelfSigned(dir, 'bridge');
    expires = new X509Certificate(pair.certPem).validTo;
  });
  await webhook.until(() => events(webhook, 'certificate-expiring').length > 0, 10_000);
  // The conditions are checked every 500 ms with these thresholds: several checks, one alert.
  await sleep(2000);
  const alerts = events(webhook, 'certificate-expiring');
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].expires_at, new Date(expires).toISOString());
  assert.match(String(alerts[0].cert_file), /bridge\.crt$/);
  assert.match(String(alerts[0].summary), /the listener certificate .*bridge\.crt expires .*; devices will refuse it after that/);
});

test('a provider that refuses the account is an upstream failing, with the hint to check the password', async () => {
  const { bridge, webhook, provider } = await alertingBridge(
    'retry_initial: 200ms, retry_max: 400ms',
    undefined,
    'changed-by-the-provider',
  );
  assert.ok((await send(bridge)).ok);
  await webhook.until(() => events(webhook, 'upstream-failing').length > 0, 10_000);
  const [failing] = events(webhook, 'upstream-failing');
  assert.match(String(failing.error), /535/);
  assert.match(String(failing.hint), /wrong account or app password/);
  assert.equal(provider.messages.length, 0);
  assert.doesNotMatch(JSON.stringify(webhook.bodies), /changed-by-the-provider/);
});

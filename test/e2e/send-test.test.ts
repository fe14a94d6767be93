import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI } from '../support/cli.js';
import { startRelay, type Relay } from '../support/relay.js';

const exec = promisify(execFile);

let relay: Relay;

before(async () => {
  relay = await startRelay({
    minVersion: 'TLSv1',
    devices: `  doorphone:
    password: door-secret
    mechanisms: [CRAM-MD5, DIGEST-MD5, PLAIN]
    senders: [door@example.net]
    upstream: provider
`,
  });
});

after(() => relay?.stop());

const sendTest = (...args: string[]) =>
  exec(process.execPath, [CLI, 'send-test', '-c', relay.bridge.file, '--to', 'owner@example.com', ...args], { timeout: 60_000 });

/** Neither the password nor any encoding a SASL line could carry it in may show. */
function assertMasked(transcript: string, password: string): void {
  assert.doesNotMatch(transcript, new RegExp(password));
  assert.ok(!transcript.includes(Buffer.from(password).toString('base64')));
}

test('send-test --device goes through the running bridge as that device would: TLS 1.0, DIGEST-MD5, transcript masked', async () => {
  const { stdout } = await sendTest('--device', 'doorphone', '--mechanism', 'DIGEST-MD5', '--tls', '1.0');
  assert.match(stdout, /^S: 220 /m);
  assert.match(stdout, /^ {3}\(TLS TLSv1, /m);
  assert.match(stdout, /^C: AUTH DIGEST-MD5$/m);
  assert.match(stdout, /^C: \*{8}$/m);
  assert.match(stdout, /^S: 235 /m);
  assert.match(stdout, /^sent \(device doorphone via 127\.0\.0\.1:\d+\): 250 /m);
  assertMasked(stdout, 'door-secret');
  const [message] = await relay.provider.waitForMessages(1, 10_000);
  assert.equal(message.envelope.mailFrom, 'door@example.net');
  assert.deepEqual(message.envelope.rcptTo, ['owner@example.com']);
  assert.match(message.raw.toString(), /Subject: smtp-bridge send-test \(device doorphone/);
});

test('send-test --upstream goes straight to the provider with the configured account, AUTH masked', async () => {
  const before = relay.provider.messages.length;
  const { stdout } = await sendTest('--upstream', 'provider');
  assert.match(stdout, /^ {3}\(TLS TLSv1\.3, /m);
  assert.match(stdout, /^C: AUTH PLAIN \*{8}$/m);
  assert.match(stdout, /^sent \(upstream provider at 127\.0\.0\.1\): 250 /m);
  assertMasked(stdout, 'upstream-secret');
  const messages = await relay.provider.waitForMessages(before + 1, 10_000);
  assert.equal(messages[before].authUser, 'relay@example.net');
  assert.equal(messages[before].envelope.mailFrom, 'relay@example.net');
});

test('send-test with a mechanism the device is not offered shows the refusal and exits 1', async () => {
  await assert.rejects(sendTest('--device', 'doorphone', '--mechanism', 'LOGIN'), (err: { code: number; stdout: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stdout, /^not sent \(device doorphone via .*\): the server answered 504 5\.5\.4 /m);
    assertMasked(err.stdout, 'door-secret');
    return true;
  });
});

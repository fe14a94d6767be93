import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { pythonSmtplib } from '../support/python-client.js';
import { LineClient } from '../support/line-client.js';
import { makeSelfSigned } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { CLI } from '../support/cli.js';
import { spawnBridge, type BridgeProcess } from '../support/process.js';
import { openDataSession } from '../support/raw-client.js';
import { waitUntil } from '../support/wait.js';

const exec = promisify(execFile);
const DOORPHONE = `  doorphone: { password: door-secret, senders: [door@example.net], upstream: capture }\n`;
const NEWCOMER = `  newcomer: { password: new-secret, senders: [new@example.net], upstream: capture }\n`;
const SENSOR = `  sensor: { auth: none, networks: [127.0.0.1], senders: [sensor@example.net], upstream: capture }\n`;

let dir: string;
let file: string;
let ports: { implicit: number; none: number };
let bridge: BridgeProcess;

const configWith = (devices: string, listen = ports) => `hostname: bridge.test
listen:
  - { port: ${listen.implicit}, tls: implicit, address: 127.0.0.1 }
  - { port: ${listen.none}, tls: none, address: 127.0.0.1 }
tls: { cert_file: bridge.crt, key_file: bridge.key }
spool: { dir: spool }
delivery: { shutdown_wait: 5s }
upstreams:
  capture: { type: directory, path: captured }
devices:
${devices}`;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-reload-'));
  file = join(dir, 'smtp-bridge.yaml');
  ports = { implicit: await freePort(), none: await freePort() };
  await writeFile(file, configWith(DOORPHONE + SENSOR), { mode: 0o600 });
  bridge = await spawnBridge(file, 2, 120_000);
});

after(async () => {
  await bridge?.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
});

const send = (username: string, password: string, from: string) =>
  pythonSmtplib({
    host: '127.0.0.1',
    port: ports.implicit,
    security: 'implicit',
    mechanism: 'PLAIN',
    username,
    password,
    from,
    to: ['owner@example.com'],
    message: `Subject: from ${username}\r\n\r\nhello\r\n`,
  });

const captured = async () => {
  const names = (await readdir(join(dir, 'captured')).catch(() => [])).filter((name) => name.endsWith('.eml'));
  return Promise.all(names.map((name) => readFile(join(dir, 'captured', name), 'utf8')));
};

const reloads = () => bridge.logs.filter((line) => line.msg === 'config reloaded' || line.msg.startsWith('config reload failed'));

async function nextReload(trigger: () => Promise<unknown>) {
  const seen = reloads().length;
  await trigger();
  await bridge.waitForLog(() => reloads().length > seen, 10_000);
  return reloads()[seen];
}

test('reload with a valid config: a new device can log in, and a session open across the reload finishes its message', async () => {
  const open = await LineClient.connect({ port: ports.implicit, tls: true });
  try {
    assert.equal((await open.reply())?.code, 220);
    assert.equal((await open.command('EHLO door.lan'))?.code, 250);
    assert.equal((await open.command(`AUTH PLAIN ${Buffer.from('\0doorphone\0door-secret').toString('base64')}`))?.code, 235);
    assert.equal((await open.command('MAIL FROM:<door@example.net>'))?.code, 250);

    assert.equal((await send('newcomer', 'new-secret', 'new@example.net')).code, 535);
    await writeFile(file, configWith(DOORPHONE + SENSOR + NEWCOMER));
    const line = await nextReload(() => exec(process.execPath, [CLI, 'reload', '-c', file], { timeout: 20_000 }));
    assert.equal(line.msg, 'config reloaded');
    assert.equal(line.devices, 3);

    const newcomer = await send('newcomer', 'new-secret', 'new@example.net');
    assert.ok(newcomer.ok, newcomer.transcript);

    assert.equal((await open.command('RCPT TO:<owner@example.com>'))?.code, 250);
    assert.equal((await open.command('DATA'))?.code, 354);
    const done = await open.command('Subject: across a reload\r\n\r\nstill here\r\n.');
    assert.equal(done?.code, 250, done?.text);
  } finally {
    open.close();
  }
  const messages = await captured();
  assert.equal(messages.filter((text) => text.includes('Subject: across a reload')).length, 1);
  assert.equal(messages.filter((text) => text.includes('Subject: from newcomer')).length, 1);
});

test('reload with an invalid config: its errors are logged with key and line, and the running config keeps serving', async () => {
  await writeFile(file, configWith(DOORPHONE.replace('password:', 'pasword:') + SENSOR));
  const refused = await exec(process.execPath, [CLI, 'reload', '-c', file], { timeout: 20_000 }).catch(
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal((refused as { code: number }).code, 1);
  assert.match((refused as { stderr: string }).stderr, /devices\.doorphone\.pasword: unknown key \(line \d+\)/);

  const line = await nextReload(async () => bridge.child.kill('SIGHUP'));
  assert.equal(line.msg, 'config reload failed: the running config stays');
  assert.ok((line.errors as string[]).some((error) => /devices\.doorphone\.pasword: unknown key \(line \d+\)/.test(error)));
  assert.doesNotMatch(JSON.stringify(line), /door-secret/);

  const still = await send('doorphone', 'door-secret', 'door@example.net');
  assert.ok(still.ok, still.transcript);
  const newcomer = await send('newcomer', 'new-secret', 'new@example.net');
  assert.ok(newcomer.ok, 'the last good config (with newcomer) is still the running one');
});

test('reload picks up a replaced certificate file and names the changes that need a restart', async () => {
  const before = await peerFingerprint();
  const fresh = await makeSelfSigned(join(dir, 'new-cert'), 'bridge');
  await writeFile(join(dir, 'bridge.crt'), fresh.certPem);
  await writeFile(join(dir, 'bridge.key'), fresh.keyPem);
  await writeFile(file, configWith(DOORPHONE + SENSOR + NEWCOMER, { implicit: ports.implicit, none: await freePort() }));
  const line = await nextReload(async () => bridge.child.kill('SIGHUP'));
  assert.equal(line.msg, 'config reloaded');
  assert.equal(line.certificate_changed, true);
  const restart = bridge.logs.find((l) => l.msg.startsWith('config reloaded, but these changes need a restart'));
  assert.deepEqual(restart?.keys, ['listen']);
  const after = await peerFingerprint();
  assert.notEqual(after, before);
  assert.equal(after, new X509Certificate(fresh.certPem).fingerprint256);
  // The old cleartext port still serves: listeners change only with a restart.
  const sensor = await pythonSmtplib({
    host: '127.0.0.1',
    port: ports.none,
    security: 'none',
    from: 'sensor@example.net',
    to: ['o@example.com'],
    message: 'Subject: s\r\n\r\nx\r\n',
  });
  assert.ok(sensor.ok, sensor.transcript);
});

test('reload with a broken key file changes nothing: the error is logged and the running certificate and devices stay', async () => {
  const served = await peerFingerprint();
  const key = await readFile(join(dir, 'bridge.key'), 'utf8');
  await writeFile(join(dir, 'bridge.key'), '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
  await writeFile(file, configWith(DOORPHONE + SENSOR));
  try {
    const line = await nextReload(async () => bridge.child.kill('SIGHUP'));
    assert.equal(line.msg, 'config reload failed: the running config stays');
    assert.equal(await peerFingerprint(), served);
    const newcomer = await send('newcomer', 'new-secret', 'new@example.net');
    assert.ok(newcomer.ok, 'a failed reload must not half-apply the new device list');
  } finally {
    await writeFile(join(dir, 'bridge.key'), key);
  }
});

test('SIGTERM during DATA loses nothing: the message being sent is finished, answered 250 and delivered', async () => {
  const socket = await openDataSession(ports.none, 'sensor@example.net');
  const reply = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (/^\d{3} .*\r\n/m.test(text)) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  socket.write('Subject: interrupted\r\n\r\nthe first half');
  const exited = bridge.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 200));
  socket.write(' and the second half\r\n.\r\n');
  const answer = await reply;
  await exited;
  socket.destroy();
  assert.match(answer, /^250 /m, answer);
  assert.equal(bridge.child.exitCode, 0, bridge.stderr);
  // Answered 250 means on disk: delivered before the stop, or queued and delivered by the next start.
  bridge = await spawnBridge(file, 1, 60_000);
  const messages = await waitUntil(
    'the interrupted message in the capture directory',
    async () => {
      const all = await captured();
      return all.some((text) => text.includes('the first half and the second half')) && all;
    },
    15_000,
    200,
  );
  assert.equal(messages.filter((text) => text.includes('the first half and the second half')).length, 1);
});

/** The SHA-256 fingerprint of the certificate a new TLS session to the bridge gets. */
function peerFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: ports.implicit, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

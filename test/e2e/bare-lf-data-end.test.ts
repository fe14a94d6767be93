import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { captureYaml } from '../support/capture-config.js';
import { LineClient } from '../support/line-client.js';
import { runCli } from '../support/cli.js';

/**
 * Firmware that ends DATA with <LF>.<LF>. By default that line is content
 * (SMTP smuggling) and the device waits for a reply that never comes; a
 * device with allow_bare_lf_dot gets its message accepted, and only its own
 * sessions do, whether it is known by its network or by its AUTH.
 */

let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    yaml: captureYaml(`  oldcam: { auth: none, networks: [127.0.6.1], senders: [oldcam@example.net], upstream: capture, allow_bare_lf_dot: true }
  newcam: { auth: none, networks: [127.0.6.2], senders: [newcam@example.net], upstream: capture }
  nvr: { password: nvr-secret, mechanisms: [PLAIN], senders: [nvr@example.net], upstream: capture, allow_bare_lf_dot: true }
`),
  });
});

after(() => bridge?.stop());

async function capturedContaining(text: string): Promise<string[]> {
  const dir = join(bridge.dir, 'captured');
  const files = (await readdir(dir).catch(() => [])).filter((file) => file.endsWith('.eml'));
  const bodies = await Promise.all(files.map((file) => readFile(join(dir, file), 'latin1')));
  return bodies.filter((body) => body.includes(text));
}

/** A greeted session past EHLO on the plain listener, from `localAddress`. */
async function session(localAddress: string): Promise<LineClient> {
  const client = await LineClient.connect({ port: bridge.ports.none!, localAddress });
  assert.equal((await client.reply())?.code, 220);
  assert.equal((await client.command('EHLO cam.lan'))?.code, 250);
  return client;
}

/** Takes the session to DATA's 354. */
async function startData(client: LineClient, from: string): Promise<LineClient> {
  assert.equal((await client.command(`MAIL FROM:<${from}>`))?.code, 250);
  assert.equal((await client.command('RCPT TO:<owner@example.com>'))?.code, 250);
  assert.equal((await client.command('DATA'))?.code, 354);
  return client;
}

test('the opt-in is logged at start, naming the device, like cleartext AUTH, and check-config shows it', async () => {
  const warned = bridge.logs.filter((line) => line.level === 'warn' && /allow_bare_lf_dot/.test(line.msg)).map((line) => line.device);
  assert.deepEqual(warned.sort(), ['nvr', 'oldcam']);
  const { code, stdout: summary } = await runCli(['check-config', '-c', bridge.file]);
  assert.equal(code, 0);
  const optedIn = summary.split('\n').filter((line) => line.includes('allow_bare_lf_dot'));
  assert.equal(optedIn.length, 2, summary);
});

test('allow_bare_lf_dot: a device known by its network ends DATA with <LF>.<LF>, and the session goes on', async () => {
  const client = await startData(await session('127.0.6.1'), 'oldcam@example.net');
  const reply = await client.command(Buffer.from('Subject: lf one\n\nmotion at the gate\n.\n'), 5000);
  assert.equal(reply?.code, 250, 'the bare-LF end was taken as the end of DATA');
  // A second message in the same session, ended the same way straight after DATA (an empty body).
  await startData(client, 'oldcam@example.net');
  assert.equal((await client.command(Buffer.from('.\n'), 5000))?.code, 250);
  assert.equal((await client.command('QUIT'))?.code, 221);
  client.close();
  await sleep(300);
  const [body] = await capturedContaining('lf one');
  assert.ok(body, 'the message was delivered');
  assert.match(body, /motion at the gate\r\n$/, 'the last line keeps its line end, and no "." is left in the body');
});

test('allow_bare_lf_dot: a device known by its AUTH (implicit TLS) ends DATA with <LF>.<LF>', async () => {
  const client = await LineClient.connect({ port: bridge.ports.implicit!, tls: true });
  assert.equal((await client.reply())?.code, 220);
  assert.equal((await client.command('EHLO nvr.lan'))?.code, 250);
  assert.equal((await client.command(`AUTH PLAIN ${Buffer.from('\0nvr\0nvr-secret').toString('base64')}`))?.code, 235);
  await startData(client, 'nvr@example.net');
  assert.equal((await client.command(Buffer.from('Subject: lf nvr\n\ndisk full\n.\n'), 5000))?.code, 250);
  client.close();
});

test('without the opt-in, <LF>.<LF> stays content: no reply until <CRLF>.<CRLF>', async () => {
  const client = await startData(await session('127.0.6.2'), 'newcam@example.net');
  client.write('Subject: lf two\r\n\r\nbefore\n.\nMAIL FROM:<smuggled@example.net>\r\nafter');
  assert.equal(await client.reply(1500), null, 'a bare-LF "." must not end DATA for this device');
  assert.equal((await client.command('\r\n.'))?.code, 250);
  client.close();
  await sleep(300);
  const [body] = await capturedContaining('lf two');
  assert.ok(body.includes('MAIL FROM:<smuggled@example.net>'), 'what followed the bare-LF "." is part of the one message');
});

test("on the listener where an opted-in device authenticates, another device's session keeps the strict end", async () => {
  const client = await LineClient.connect({ port: bridge.ports.implicit!, tls: true, localAddress: '127.0.6.2' });
  assert.equal((await client.reply())?.code, 220);
  assert.equal((await client.command('EHLO cam.lan'))?.code, 250);
  await startData(client, 'newcam@example.net');
  client.write('Subject: lf three\n\nx\n.\n');
  assert.equal(await client.reply(1500), null);
  client.close();
});

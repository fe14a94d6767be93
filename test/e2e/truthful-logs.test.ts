import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { startBridge } from '../../src/bridge.js';
import { loadOrCreateCertificate } from '../../src/inbound/certificate.js';
import { createLogger } from '../../src/observe/logger.js';
import { startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import { pythonSmtplib } from '../support/python-client.js';
import { LineClient } from '../support/line-client.js';
import { CLI } from '../support/cli.js';
import { dropMidData } from '../support/raw-client.js';

/** Issue 9 item 13: log lines that say what happened, replies worded like the rest, files only the bridge can read. */

let bridge: TestBridge;
let umask: number;

before(async () => {
  // The modes must hold under the loosest umask an init system might leave.
  umask = process.umask(0o000);
  bridge = await startTestBridge({
    yaml: `max_message_size: 2KB
upstreams:
  capture: { type: directory, path: captured }
devices:
  camera:
    auth: none
    networks: [127.0.0.1/32]
    senders: ["camera@example.net"]
    upstream: capture
`,
    ownCertificate: true,
  });
});

after(async () => {
  await bridge?.stop();
  process.umask(umask);
});

/** Log lines that arrive while `action` runs, and a little after (the server logs once the client is gone). */
async function logsDuring(action: () => Promise<void>, settleMs = 500): Promise<LogLine[]> {
  const from = bridge.logs.length;
  await action();
  await sleep(settleMs);
  return bridge.logs.slice(from);
}

/** One message from the camera (no AUTH, no TLS), by python's smtplib. */
const sendAsCamera = (subject: string) =>
  pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.none!,
    security: 'none',
    from: 'camera@example.net',
    to: ['someone@example.com'],
    message: `Subject: ${subject}\r\n\r\nhello\r\n`,
  });

const withoutStack = (line: LogLine) => !JSON.stringify(line).includes('    at ');

/** Writes `bytes` and waits for the server to close the connection (bounded). */
function sendAndWaitForClose(socket: net.Socket, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.write(bytes);
  });
}

describe('TLS handshake failures', () => {
  test('on an implicit-TLS listener: one warn with client_ip', async () => {
    const lines = await logsDuring(async () => {
      const socket = net.connect({ port: bridge.ports.implicit!, host: '127.0.0.1' });
      await new Promise((resolve) => socket.once('connect', resolve));
      await sendAndWaitForClose(socket, 'EHLO plaintext.test\r\n');
    });
    const errors = lines.filter((line) => line.msg === 'connection error');
    assert.equal(errors.length, 1, JSON.stringify(lines));
    assert.deepEqual([errors[0].level, errors[0].client_ip, errors[0].port], ['warn', '127.0.0.1', bridge.ports.implicit]);
    assert.ok(withoutStack(errors[0]));
  });

  test('after STARTTLS: logged once, with client_ip', async () => {
    const lines = await logsDuring(async () => {
      const client = await LineClient.connect({ port: bridge.ports.starttls! });
      assert.equal((await client.reply())?.code, 220);
      assert.equal((await client.command('EHLO plaintext.test'))?.code, 250);
      assert.equal((await client.command('STARTTLS'))?.code, 220);
      await sendAndWaitForClose(client.socket, 'this is not a TLS ClientHello\r\n');
    });
    const errors = lines.filter((line) => line.msg === 'connection error');
    assert.equal(errors.length, 1, JSON.stringify(lines));
    assert.deepEqual([errors[0].level, errors[0].client_ip], ['warn', '127.0.0.1']);
  });
});

test('a client that hangs up during DATA is a warn about the client, without a stack', async () => {
  const lines = await logsDuring(() => dropMidData(bridge.ports.none!, 'camera@example.net'));
  assert.deepEqual(
    lines.filter((line) => line.level === 'error' || line.level === 'fatal'),
    [],
  );
  const dropped = lines.filter((line) => line.msg === 'client disconnected during DATA');
  assert.equal(dropped.length, 1, JSON.stringify(lines));
  assert.deepEqual([dropped[0].level, dropped[0].client_ip, dropped[0].device], ['warn', '127.0.0.1', 'camera']);
  assert.ok(withoutStack(dropped[0]));
});

test('451 4.3.0 is logged as "message not accepted" with the error, without a stack', async () => {
  const tmp = join(bridge.dir, 'spool', 'tmp');
  // The spool's work directory replaced by a file: an error that is not a full or read-only disk.
  await rename(tmp, `${tmp}.away`);
  await writeFile(tmp, '');
  try {
    const lines = await logsDuring(async () => {
      const result = await sendAsCamera('not taken');
      assert.equal(result.code, 451, result.transcript);
      assert.match(result.transcript, /451 4\.3\.0 Local error in processing/);
    });
    const logged = lines.filter((line) => line.msg === 'message not accepted');
    assert.equal(logged.length, 1, JSON.stringify(lines));
    assert.deepEqual([logged[0].level, logged[0].client_ip, logged[0].device, logged[0].code], ['error', '127.0.0.1', 'camera', 'ENOTDIR']);
    assert.match(String(logged[0].err), /ENOTDIR/);
    assert.ok(withoutStack(logged[0]));
  } finally {
    await rm(tmp);
    await rename(`${tmp}.away`, tmp);
  }
});

describe('replies worded like the rest, with enhanced status codes', () => {
  test('552 for a message over max_message_size, at MAIL (SIZE=) and at the end of DATA', async () => {
    const client = await LineClient.connect({ port: bridge.ports.none! });
    try {
      assert.equal((await client.reply())?.code, 220);
      assert.equal((await client.command('EHLO camera.test'))?.code, 250);
      assert.deepEqual(await client.command('MAIL FROM:<camera@example.net> SIZE=4096'), {
        code: 552,
        text: '5.3.4 Message exceeds fixed maximum message size 2048',
      });
      assert.equal((await client.command('MAIL FROM:<camera@example.net>'))?.code, 250);
      assert.equal((await client.command('RCPT TO:<someone@example.com>'))?.code, 250);
      assert.equal((await client.command('DATA'))?.code, 354);
      assert.deepEqual(await client.command(`Subject: big\r\n\r\n${'x'.repeat(4096)}\r\n.`), {
        code: 552,
        text: '5.3.4 Message exceeds fixed maximum message size 2048',
      });
    } finally {
      client.close();
    }
  });

  test('501 for EHLO and HELO without a hostname', async () => {
    const client = await LineClient.connect({ port: bridge.ports.none! });
    try {
      assert.equal((await client.reply())?.code, 220);
      assert.deepEqual(await client.command('EHLO'), { code: 501, text: '5.5.4 Syntax: EHLO hostname' });
      assert.deepEqual(await client.command('HELO'), { code: 501, text: '5.5.4 Syntax: HELO hostname' });
    } finally {
      client.close();
    }
  });
});

test('captured messages, their envelopes and the generated certificate and key are 0600 in 0700 directories, even under umask 000', async () => {
  const result = await sendAsCamera('private');
  assert.equal(result.ok, true, result.transcript);
  const captured = join(bridge.dir, 'captured');
  const mode = async (path: string) => (await stat(path)).mode & 0o777;
  assert.equal(await mode(captured), 0o700);
  const files = await readdir(captured);
  assert.ok(files.some((name) => name.endsWith('.eml')) && files.some((name) => name.endsWith('.json')));
  for (const name of files) assert.equal(await mode(join(captured, name)), 0o600, name);
  assert.equal(await mode(join(bridge.dir, 'bridge.key')), 0o600);
  assert.equal(await mode(join(bridge.dir, 'bridge.crt')), 0o600);
});

test('a certificate generated into a new directory: the directory is 0700', async () => {
  const certs = join(bridge.dir, 'fresh', 'certs');
  await loadOrCreateCertificate(join(certs, 'bridge.crt'), join(certs, 'bridge.key'), 'fresh.test');
  assert.equal((await stat(certs)).mode & 0o777, 0o700);
  for (const name of await readdir(certs)) assert.equal((await stat(join(certs, name))).mode & 0o777, 0o600, name);
  assert.deepEqual((await readdir(certs)).sort(), ['bridge.crt', 'bridge.key']);
});

test('a busy port is one clear error, with no "connection error" beside it', async (t) => {
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => squatter.close(resolve)));
  const port = (squatter.address() as net.AddressInfo).port;
  const dir = join(bridge.dir, 'busy');
  await mkdir(dir);
  const file = join(dir, 'bridge.yaml');
  await writeFile(
    file,
    `listen: [{ port: ${port}, tls: none, address: 127.0.0.1 }]\ntls: { cert_file: ../bridge.crt, key_file: ../bridge.key }\nupstreams: {}\ndevices: {}\n`,
  );
  const logs: LogLine[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  await assert.rejects(startBridge((await loadConfig(file)).config, logger), {
    message: `cannot listen on 127.0.0.1:${port}: address already in use`,
  });
  assert.deepEqual(
    logs.filter((line) => line.msg === 'connection error'),
    [],
  );
});

test('device unfreeze of a device that does not exist says so', () => {
  const run = spawnSync(process.execPath, [CLI, 'device', 'unfreeze', 'NOSUCH', '-c', bridge.file], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /no such device "NOSUCH"/);
  const known = spawnSync(process.execPath, [CLI, 'device', 'unfreeze', 'camera', '-c', bridge.file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.match(known.stderr, /device "camera" is not frozen/);
});

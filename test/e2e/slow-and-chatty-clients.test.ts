import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { captureYaml, SENSOR_DEVICE } from '../support/capture-config.js';
import { LineClient } from '../support/line-client.js';

/**
 * Clients that hold a session without using it: a slowloris trickling bytes
 * (limits.line_timeout, limits.session_timeout, short here), and a client
 * flooding commands that get nowhere (limits.max_junk_commands,
 * limits.max_errors, Postfix's smtpd_junk_command_limit and
 * smtpd_hard_error_limit), while a device that sends mail is never cut off.
 */

const LINE_TIMEOUT_MS = 1000;
const SESSION_TIMEOUT_MS = 4000;
/** How late a limit may act on a busy machine running four test files at once. */
const SLACK_MS = 3000;
const JUNK = 30;
const ERRORS = 8;
let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    yaml: captureYaml(
      SENSOR_DEVICE,
      `limits: { line_timeout: ${LINE_TIMEOUT_MS}, session_timeout: ${SESSION_TIMEOUT_MS}, max_junk_commands: ${JUNK}, max_errors: ${ERRORS} }\n`,
    ),
  });
});

after(() => bridge?.stop());

async function greeted(localAddress = '127.0.0.1'): Promise<LineClient> {
  const client = await LineClient.connect({ port: bridge.ports.none!, localAddress });
  assert.equal((await client.reply())?.code, 220);
  return client;
}

async function capturedMessages(): Promise<number> {
  const files = await readdir(join(bridge.dir, 'captured')).catch(() => []);
  return files.filter((file) => file.endsWith('.eml')).length;
}

/** Sends `text` one byte every `gapMs` until the server closes; returns its last reply and how long it took. */
async function trickle(client: LineClient, text: string, gapMs: number): Promise<{ reply: string; ms: number }> {
  const started = Date.now();
  const reply = client.reply(SESSION_TIMEOUT_MS * 3);
  for (let i = 0; !client.isClosed && Date.now() - started < SESSION_TIMEOUT_MS * 3; i++) {
    client.write(text[i % text.length]);
    await Promise.race([sleep(gapMs), client.closed]);
  }
  const last = await reply;
  return { reply: last ? `${last.code} ${last.text}` : 'none', ms: Date.now() - started };
}

test('a command line trickled one byte at a time is cut off after line_timeout with 421 4.4.2', async () => {
  const client = await greeted();
  const { reply, ms } = await trickle(client, 'EHLO slowloris.example', 200);
  client.close();
  assert.match(reply, /^421 4\.4\.2 .*Command line took too long/);
  assert.ok(ms >= LINE_TIMEOUT_MS - 100 && ms < LINE_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
  const line = bridge.logs.find((l) => l.msg === 'connection closed: client too slow' && l.limit === 'line_timeout');
  assert.equal(line?.level, 'warn');
  assert.equal(line?.client_ip, '127.0.0.1');
});

test('an implicit-TLS handshake trickled one byte at a time is cut off after line_timeout', async () => {
  const socket = net.connect({ port: bridge.ports.implicit!, host: '127.0.0.1', localAddress: '127.0.5.3' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  // Not events.once: the bridge may end the handshake with a reset, and once() would reject on that 'error'.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const started = Date.now();
  // The start of a TLS ClientHello record, never finished.
  const hello = Buffer.from('16030100c8010000c40303', 'hex');
  for (let i = 0; !socket.destroyed && Date.now() - started < LINE_TIMEOUT_MS + SLACK_MS * 2; i++) {
    socket.write(hello.subarray(i % hello.length, (i % hello.length) + 1));
    await Promise.race([sleep(150), closed]);
  }
  const ms = Date.now() - started;
  socket.destroy();
  assert.ok(ms >= LINE_TIMEOUT_MS - 100 && ms < LINE_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
  assert.ok(bridge.logs.some((l) => l.msg === 'connection closed: client too slow' && l.client_ip === '127.0.5.3'));
});

test('complete lines just inside line_timeout still end at session_timeout', async () => {
  const client = await greeted();
  const started = Date.now();
  let last;
  do {
    last = await client.command('NOOP', SESSION_TIMEOUT_MS);
    await Promise.race([sleep(LINE_TIMEOUT_MS / 2), client.closed]);
  } while (last?.code === 250 && !client.isClosed && Date.now() - started < SESSION_TIMEOUT_MS * 3);
  // The 421 may have come while the client paused between two NOOPs.
  if (last?.code === 250) last = await client.reply(1000);
  client.close();
  const ms = Date.now() - started;
  assert.equal(last?.code, 421);
  assert.match(last!.text, /^4\.4\.2 .*Session took too long/);
  assert.ok(ms >= SESSION_TIMEOUT_MS - 200 && ms < SESSION_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
  assert.ok(bridge.logs.some((l) => l.msg === 'connection closed: client too slow' && l.limit === 'session_timeout'));
});

test('a message sent slowly but steadily is delivered when the session ends in time', async () => {
  const client = await greeted();
  for (const [line, code] of [
    ['EHLO sensor.lan', 250],
    ['MAIL FROM:<sensor@example.net>', 250],
    ['RCPT TO:<owner@example.com>', 250],
    ['DATA', 354],
  ] as const) {
    assert.equal((await client.command(line))?.code, code, line);
    await sleep(300);
  }
  for (let i = 0; i < 5; i++) {
    client.write(`line ${i} of a slow message\r\n`);
    await sleep(300);
  }
  assert.equal((await client.command('.'))?.code, 250);
  assert.equal((await client.command('QUIT'))?.code, 221);
  client.close();
});

test(`${JUNK} commands that get nowhere are answered; the next one is 421 4.7.0 and the end of the session`, async () => {
  const client = await greeted('127.0.5.1');
  const mix = ['NOOP', 'EHLO flood.example', 'HELP', 'VRFY root', 'RSET'];
  // Pipelined as a flood would send them, far more than the limit.
  client.write(Array.from({ length: JUNK * 3 }, (_, i) => `${mix[i % mix.length]}\r\n`).join(''));
  const codes: number[] = [];
  for (let reply = await client.reply(); reply; reply = await client.reply(2000)) codes.push(reply.code);
  assert.equal(codes.length, JUNK + 1, `replies: ${codes.join(' ')}`);
  assert.equal(codes.at(-1), 421);
  assert.ok(client.isClosed);
  const line = bridge.logs.find(
    (l) => l.msg === 'connection closed: too many commands without progress' && l.limit === 'max_junk_commands',
  );
  assert.equal(line?.client_ip, '127.0.5.1');
});

test(`${ERRORS} refused commands end the session with 421 4.7.0 (refused MAIL and RSET from a stranger)`, async () => {
  // 127.0.5.2 is no device's address: its MAIL is refused with 530.
  const client = await greeted('127.0.5.2');
  assert.equal((await client.command('EHLO stranger.example'))?.code, 250);
  const replies: string[] = [];
  for (let i = 0; i < ERRORS * 2 && !client.isClosed; i++) {
    for (const command of ['MAIL FROM:<someone@example.net>', 'RSET']) {
      const reply = await client.command(command, 2000);
      if (reply) replies.push(`${command.slice(0, 4)} ${reply.code}`);
    }
  }
  const refusals = Array.from({ length: ERRORS }, () => ['MAIL 530', 'RSET 250']).flat();
  // The reply to the last refused MAIL is followed by the 421, read as the reply to the RSET after it.
  assert.deepEqual(replies, [...refusals.slice(0, -1), 'RSET 421']);
  await Promise.race([client.closed, sleep(2000)]);
  assert.ok(client.isClosed);
  assert.ok(bridge.logs.some((l) => l.limit === 'max_errors' && l.client_ip === '127.0.5.2'));
});

test('a device sending many messages in one session, with RSET and NOOP between them, is never cut off', async () => {
  const before = await capturedMessages();
  const client = await greeted();
  assert.equal((await client.command('EHLO sensor.lan'))?.code, 250);
  const messages = 3;
  for (let m = 0; m < messages; m++) {
    // Almost the junk limit between two messages: each accepted message starts the count afresh.
    for (let i = 0; i < JUNK - 2; i++) assert.equal((await client.command(i % 2 ? 'NOOP' : 'RSET'))?.code, 250);
    assert.equal((await client.command('MAIL FROM:<sensor@example.net>'))?.code, 250);
    assert.equal((await client.command('RCPT TO:<owner@example.com>'))?.code, 250);
    assert.equal((await client.command('DATA'))?.code, 354);
    assert.equal((await client.command(`Subject: report ${m}\r\n\r\nall well\r\n.`))?.code, 250);
  }
  assert.equal((await client.command('QUIT'))?.code, 221);
  client.close();
  await sleep(500);
  assert.equal((await capturedMessages()) - before, messages);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { pythonSmtplib } from '../support/python-client.js';
import { LineClient } from '../support/line-client.js';

/**
 * Input no device should send, from clients that may be broken or hostile:
 * each case must get a reply or a closed connection, never take the server
 * down, and never stop it answering everyone else meanwhile.
 */

let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    // Room for the 300-connection test below: its point is load, not the limits (test/e2e/connection-limits.test.ts).
    yaml: `limits: { max_connections: 400, max_connections_per_ip: 400 }
upstreams:
  capture: { type: directory, path: captured }
devices:
  doorphone:
    password: door-secret
    mechanisms: [PLAIN, LOGIN, CRAM-MD5]
    senders: [doorphone@example.net]
    upstream: capture
`,
  });
});

after(() => bridge?.stop());

/** A good client completing a whole session: the proof that the server is up and answering. */
async function assertServing(note: string): Promise<void> {
  const result = await pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.starttls!,
    security: 'starttls',
    tlsVersion: 'TLSv1.2',
    mechanism: 'CRAM-MD5',
    username: 'doorphone',
    password: 'door-secret',
    from: 'doorphone@example.net',
    to: ['owner@example.com'],
    message: 'Subject: still here\r\n\r\nyes\r\n',
    timeoutMs: 10_000,
  });
  assert.equal(result.code, 250, `${note}: a good client was not served\n${result.transcript}`);
}

/** An implicit-TLS session past EHLO, from its own loopback address so failed AUTHs lock out nobody else. */
async function tlsSession(localAddress: string): Promise<LineClient> {
  const client = await LineClient.connect({ port: bridge.ports.implicit!, tls: true, localAddress });
  assert.equal((await client.reply())?.code, 220);
  assert.equal((await client.command('EHLO garbage.test'))?.code, 250);
  return client;
}

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

test('AUTH payloads that are not base64, too long, or missing their NULs are refused, and the session goes on', async () => {
  const client = await tlsSession('127.0.3.1');
  const cases: [string, string | null][] = [
    ['AUTH PLAIN !!!not*base64???', null],
    [`AUTH PLAIN ${b64('doorphone door-secret')}`, null],
    [`AUTH PLAIN ${b64('\0doorphone')}`, null],
    [`AUTH PLAIN ${b64(`\0doorphone\0${'x'.repeat(8000)}`)}`, null],
    [`AUTH PLAIN ${b64(randomBytes(600))}`, null],
    ['AUTH LOGIN', '%%% not base64 %%%'],
    ['AUTH CRAM-MD5', 'bm8tc3BhY2UtaGVyZQ=='],
    ['AUTH CRAM-MD5', b64(`doorphone ${'z'.repeat(5000)}`)],
    ['AUTH CRAM-MD5', '*'],
    ['AUTH PLAIN', ''],
    ['AUTH NOSUCHMECH', null],
    ['AUTH', null],
  ];
  for (const [command, answer] of cases) {
    let reply = await client.command(command);
    if (reply?.code === 334 && answer !== null) reply = await client.command(answer);
    // A LOGIN exchange asks twice; answer its password prompt with garbage too.
    if (reply?.code === 334) reply = await client.command('%%%');
    assert.ok(reply && reply.code >= 500 && reply.code < 600, `${command} / ${answer}: ${JSON.stringify(reply)}`);
    assert.equal((await client.command('NOOP'))?.code, 250, `the session died after ${command}`);
  }
  client.close();
  const logText = JSON.stringify(bridge.logs);
  assert.ok(!logText.includes(b64('doorphone door-secret')) && !logText.includes('door-secret'), 'an AUTH payload reached the log');
  await assertServing('after malformed AUTH payloads');
});

test('a 1 MB command line is refused without reading it into a command, and others are served', async () => {
  const client = await LineClient.connect({ port: bridge.ports.none! });
  assert.equal((await client.reply())?.code, 220);
  client.write(`EHLO ${'a'.repeat(1024 * 1024)}\r\n`);
  const reply = await client.reply();
  assert.ok(reply === null || reply.code === 421 || reply.code >= 500, `got ${JSON.stringify(reply)}`);
  assert.ok(await client.closesWithin(5000), 'the connection stayed open after a 1 MB line');
  await assertServing('after a 1 MB line');
});

test('binary garbage gets error replies and a closed connection, never a crash', async () => {
  const client = await LineClient.connect({ port: bridge.ports.none! });
  assert.equal((await client.reply())?.code, 220);
  for (let i = 0; i < 20 && !client.isClosed; i++) client.write(Buffer.concat([randomBytes(4096), Buffer.from('\r\n\0\xff\r\n')]));
  const first = await client.reply();
  assert.ok(first === null || first.code >= 500, `got ${JSON.stringify(first)}`);
  assert.ok(await client.closesWithin(5000), 'the server kept talking to a client that sends only garbage');
  // Garbage inside TLS, too: after the handshake, and instead of a handshake.
  const tlsClient = await tlsSession('127.0.3.2');
  tlsClient.write(randomBytes(20_000));
  assert.ok(await tlsClient.closesWithin(3000), 'the server kept a TLS session open after garbage records');
  tlsClient.close();
  const notTls = await LineClient.connect({ port: bridge.ports.implicit! });
  notTls.write(randomBytes(5000));
  assert.ok(await notTls.closesWithin(3000), 'the server kept a connection open that sent garbage instead of a handshake');
  notTls.close();
  await assertServing('after binary garbage');
});

test('a client sending one byte per second holds only its own session: others are served meanwhile', async () => {
  const slow = await LineClient.connect({ port: bridge.ports.none! });
  assert.equal((await slow.reply())?.code, 220);
  const line = 'EHLO slow.test\r\n';
  let sent = 0;
  let served = false;
  // One byte a second for as long as the good session below lasts, never the line's end: a server that made
  // the good client wait for the slow one would leave it waiting until its own time bound, whatever the machine's load.
  const trickle = (async () => {
    while (sent < line.length - 2 && !served) {
      slow.write(line[sent++]);
      await sleep(1000);
    }
  })();
  await assertServing('while a client trickles');
  served = true;
  assert.ok(sent >= 1 && !slow.isClosed, `the good client was served while the slow one was mid-line (${sent} bytes sent)`);
  await trickle;
  slow.write(line.slice(sent));
  assert.equal((await slow.reply())?.code, 250, 'the slow client is still served when its line is complete');
  slow.close();
});

test('300 connections at once: every one is greeted and answered, and a good client is served meanwhile', async (t) => {
  const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  if (Number.isFinite(limit) && limit < 1024) return t.skip(`open-file limit ${limit} is too low for 300 client and 300 server sockets`);
  const clients = await Promise.all(Array.from({ length: 300 }, () => LineClient.connect({ port: bridge.ports.none! })));
  try {
    const greetings = await Promise.all(clients.map((client) => client.reply(10_000)));
    assert.equal(greetings.filter((reply) => reply?.code === 220).length, 300);
    await assertServing('with 300 connections open');
    const answers = await Promise.all(clients.map((client) => client.command('EHLO crowd.test', 10_000)));
    assert.equal(answers.filter((reply) => reply?.code === 250).length, 300);
  } finally {
    for (const client of clients) client.close();
  }
  await assertServing('after 300 connections');
  assert.ok(
    !bridge.logs.some((line) => line.level === 'fatal' || line.level === 'error'),
    JSON.stringify(bridge.logs.filter((l) => l.level === 'error')),
  );
});

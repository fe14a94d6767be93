import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LogLine, TestBridge } from '../support/bridge.js';
import { opensslClient } from '../support/openssl-client.js';
import { digestMd5Answer } from '../support/sasl-answers.js';
import { LineClient } from '../support/line-client.js';
import { startRelay, type Relay } from '../support/relay.js';
import type { ReceivedMessage, Upstream } from '../support/upstream.js';

/**
 * What old devices send that a strict server refuses, through the real bridge:
 * the "AUTH=" EHLO form, AUTH after HELO, DIGEST-MD5 refusals, sloppy but
 * harmless input, and the SMTP smuggling sequences that must stay content.
 * Hand-driven sessions (LineClient) play firmware that writes SMTP by hand.
 */

const HOST = '127.0.0.1';
const sloppy = { username: 'sloppy', password: 'sloppy-secret', from: 'sloppy@example.net', to: ['owner@example.com'] };
let relay: Relay;
let provider: Upstream;
let bridge: TestBridge;
let counter = 0;

before(async () => {
  relay = await startRelay({
    implicitListenerExtra: 'auth_equals: false',
    upstreams: `  capture:
    type: directory
    path: captured
`,
    devices: `  sloppy:
    password: ${sloppy.password}
    mechanisms: [PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5]
    senders: ["@example.net"]
    upstream: provider
  ilo:
    password: ilo-secret
    mechanisms: [PLAIN]
    senders: ["@example.net"]
    upstream: capture
`,
  });
  ({ bridge, provider } = relay);
});

after(() => relay?.stop());

const b64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');
const plain = (username: string, password: string) => b64(`\0${username}\0${password}`);
const uniqueId = (tag: string) => `<${tag}-${process.pid}-${++counter}@device.test>`;

/** A hand-driven session on the implicit-TLS listener (auth_equals: false), greeted and EHLO (or HELO) done. */
async function session(greet = 'EHLO firmware.lan'): Promise<LineClient> {
  const client = await LineClient.connect({ port: bridge.ports.implicit!, tls: true });
  assert.equal((await client.reply())?.code, 220);
  await expectCode(client, greet, 250);
  return client;
}

/** Sends a line and checks the reply's code; returns the reply's text. */
async function expectCode(client: LineClient, line: string, code: number): Promise<string> {
  const reply = await client.command(line);
  assert.equal(reply?.code, code, `${line} → ${reply ? `${reply.code} ${reply.text}` : 'no reply'}`);
  return reply!.text;
}

function receivedWith(id: string): ReceivedMessage {
  const found = provider.messages.filter((m) => m.raw.includes(id));
  assert.equal(found.length, 1, `the provider got ${found.length} messages with ${id}`);
  return found[0];
}

/** MAIL FROM, RCPT TO the owner, and DATA up to its 354. */
async function startData(client: LineClient, from: string): Promise<void> {
  await expectCode(client, `MAIL FROM:<${from}>`, 250);
  await expectCode(client, 'RCPT TO:<owner@example.com>', 250);
  await expectCode(client, 'DATA', 354);
}

const debugLines = (filter: (line: LogLine) => boolean) =>
  bridge.logs.filter((l) => l.level === 'debug' && l.msg === 'accepted sloppy input' && filter(l));

describe('old EHLO forms', () => {
  test('EHLO offers "AUTH=" beside "AUTH" by default, with the same mechanisms', async () => {
    const id = uniqueId('auth-equals');
    const result = await opensslClient({
      host: HOST,
      port: bridge.ports.starttls!,
      security: 'starttls',
      tlsVersion: 'TLSv1',
      mechanism: 'CRAM-MD5',
      ...sloppy,
      message: `Message-ID: ${id}\r\n\r\nhi\r\n`,
    });
    assert.ok(result.ok, result.transcript);
    const ehlo = result.replies[0].text.split('\n');
    const modern = ehlo.find((line) => line.startsWith('AUTH '));
    const old = ehlo.find((line) => line.startsWith('AUTH='));
    assert.ok(modern && old, ehlo.join('\n'));
    assert.equal(old.slice(5), modern.slice(5));
    assert.deepEqual(modern.slice(5).split(' ').sort(), ['CRAM-MD5', 'DIGEST-MD5', 'LOGIN', 'PLAIN']);
  });

  test('auth_equals: false leaves only the RFC 4954 line', async () => {
    const client = await session('HELO firmware.lan');
    const ehlo = (await expectCode(client, 'EHLO firmware.lan', 250)).split('\n');
    client.close();
    assert.ok(ehlo.some((line) => line.startsWith('AUTH ')));
    assert.ok(!ehlo.some((line) => line.startsWith('AUTH=')), ehlo.join('\n'));
  });

  test('AUTH after HELO, for printers that never send EHLO', async () => {
    const id = uniqueId('helo');
    const client = await session('HELO printer.lan');
    await expectCode(client, `AUTH PLAIN ${plain(sloppy.username, sloppy.password)}`, 235);
    await startData(client, sloppy.from);
    await expectCode(client, `Message-ID: ${id}\r\n\r\nSent after HELO.\r\n.`, 250);
    client.close();
    receivedWith(id);
  });
});

describe('DIGEST-MD5 refusals', () => {
  test('a wrong password gets the same 535 as every other bad AUTH', async () => {
    const result = await opensslClient({
      host: HOST,
      port: bridge.ports.starttls!,
      security: 'starttls',
      tlsVersion: 'TLSv1',
      mechanism: 'DIGEST-MD5',
      ...sloppy,
      password: 'guess',
      message: 'x\r\n',
    });
    const refusal = result.replies.find((r) => r.code === 535);
    assert.equal(refusal?.text, '5.7.8 Authentication credentials invalid', result.transcript);
    assert.ok(bridge.logs.some((l) => l.msg === 'authentication failed' && l.sasl_method === 'DIGEST-MD5' && l.reason === 'bad-password'));
  });

  test('a recorded response replayed in a new session is refused: nonces are single-use', async () => {
    const first = await session();
    const challenge = await expectCode(first, 'AUTH DIGEST-MD5', 334);
    const recorded = digestMd5Answer(sloppy.username, sloppy.password, challenge, HOST);
    assert.equal(Buffer.from(await expectCode(first, recorded.response, 334), 'base64').toString(), `rspauth=${recorded.rspauth}`);
    await expectCode(first, '', 235);
    first.close();

    const replay = await session();
    const fresh = await expectCode(replay, 'AUTH DIGEST-MD5', 334);
    assert.notEqual(fresh, challenge);
    await expectCode(replay, recorded.response, 535);
    assert.ok(
      bridge.logs.some((l) => l.msg === 'authentication failed' && l.reason === 'stale-nonce' && l.sasl_username === sloppy.username),
    );
    // The same session can still log in properly with a new nonce.
    const next = await expectCode(replay, 'AUTH DIGEST-MD5', 334);
    await expectCode(replay, digestMd5Answer(sloppy.username, sloppy.password, next, HOST).response, 334);
    await expectCode(replay, '', 235);
    replay.close();
  });
});

describe('sloppy but harmless input', () => {
  test('SASL responses with trailing CR, LF and spaces, inside and after the base64', async () => {
    const plainSession = await session();
    await expectCode(plainSession, `AUTH PLAIN ${b64(`\0sloppy\0${sloppy.password}\n`)}  \r`, 235);
    plainSession.close();

    const login = await session();
    await expectCode(login, 'AUTH LOGIN', 334);
    await expectCode(login, `${b64('sloppy\r\n')} `, 334);
    await expectCode(login, `${b64(`${sloppy.password}\n`)}\r`, 235);
    login.close();

    const cram = await session();
    const challenge = Buffer.from(await expectCode(cram, 'AUTH CRAM-MD5', 334), 'base64');
    const digest = createHmac('md5', sloppy.password).update(challenge).digest('hex');
    await expectCode(cram, `${b64(`sloppy ${digest}\n`)}  `, 235);
    cram.close();

    const digestSession = await session();
    const digestChallenge = await expectCode(digestSession, 'AUTH DIGEST-MD5', 334);
    const answer = Buffer.from(digestMd5Answer(sloppy.username, sloppy.password, digestChallenge, HOST).response, 'base64').toString();
    await expectCode(digestSession, `${b64(`${answer}\r\n`)} \r`, 334);
    await expectCode(digestSession, ' ', 235);
    digestSession.close();

    const logged = debugLines((l) => l.sloppy === 'line end inside a base64 SASL response');
    assert.deepEqual([...new Set(logged.map((l) => l.sasl_method))].sort(), ['CRAM-MD5', 'LOGIN', 'PLAIN']);
  });

  test('MAIL FROM and RCPT TO without angle brackets, also with parameters', async () => {
    const id = uniqueId('brackets');
    const client = await session();
    await expectCode(client, `AUTH PLAIN ${plain(sloppy.username, sloppy.password)}`, 235);
    await expectCode(client, 'MAIL FROM:sloppy@example.net SIZE=200', 250);
    await expectCode(client, 'RCPT TO: owner@example.com', 250);
    await expectCode(client, 'DATA', 354);
    await expectCode(client, `Message-ID: ${id}\r\n\r\nNo brackets.\r\n.`, 250);
    // Not everything goes: a broken bracket or a missing address is still a 501.
    await expectCode(client, 'MAIL FROM:<sloppy@example.net', 501);
    await expectCode(client, 'MAIL FROM:', 501);
    client.close();
    assert.deepEqual(receivedWith(id).envelope, { mailFrom: 'sloppy@example.net', rcptTo: ['owner@example.com'] });
    assert.ok(debugLines((l) => l.command === 'MAIL FROM' && l.address === 'sloppy@example.net').length > 0);
    assert.ok(debugLines((l) => l.command === 'RCPT TO' && JSON.stringify(l.sloppy) === '["no angle brackets"]').length > 0);
  });

  test('local parts ending in a dot (HPE iLO style) reach the upstream as written', async () => {
    const id = uniqueId('ilo');
    const client = await session();
    await expectCode(client, `AUTH PLAIN ${plain('ilo', 'ilo-secret')}`, 235);
    await expectCode(client, 'MAIL FROM:<ilo.@example.net>', 250);
    await expectCode(client, 'RCPT TO:admin.@example.com', 250);
    await expectCode(client, 'RCPT TO:<.dot@example.com>', 501);
    await expectCode(client, 'RCPT TO:<a..b.@example.com>', 501);
    await expectCode(client, 'DATA', 354);
    await expectCode(client, `Message-ID: ${id}\r\n\r\nFrom the iLO.\r\n.`, 250);
    client.close();
    const captured = join(bridge.dir, 'captured');
    const files = await readdir(captured);
    const envelopes = await Promise.all(
      files
        .filter((f) => f.endsWith('.json'))
        .map(async (f) => JSON.parse(await readFile(join(captured, f), 'utf8')) as { from: string; to: string[] }),
    );
    assert.deepEqual(
      envelopes.map(({ from, to }) => ({ from, to })),
      [{ from: 'ilo.@example.net', to: ['admin.@example.com'] }],
    );
    assert.ok(debugLines((l) => JSON.stringify(l.sloppy) === '["no angle brackets","local part ends in a dot"]').length > 0);
  });

  test('command words in lower and mixed case', async () => {
    const id = uniqueId('case');
    const client = await session('ehlo firmware.lan');
    await expectCode(client, `Auth plain ${plain(sloppy.username, sloppy.password)}`, 235);
    await expectCode(client, `mail from:<${sloppy.from}>`, 250);
    await expectCode(client, 'RcPt To:<owner@example.com>', 250);
    await expectCode(client, 'data', 354);
    await expectCode(client, `Message-ID: ${id}\r\n\r\nlower case.\r\n.`, 250);
    await expectCode(client, 'quit', 221);
    receivedWith(id);
  });

  test('a header-only message and an empty message are relayed', async () => {
    const id = uniqueId('headers-only');
    const client = await session();
    await expectCode(client, `AUTH PLAIN ${plain(sloppy.username, sloppy.password)}`, 235);
    await startData(client, sloppy.from);
    const headersOnly = `Subject: only headers\r\nMessage-ID: ${id}\r\n`;
    await expectCode(client, `${headersOnly}.`, 250);
    const emptySender = `empty-${process.pid}-${++counter}@example.net`;
    await startData(client, emptySender);
    await expectCode(client, '.', 250);
    client.close();
    // Headers the bridge adds on the way out may surround the device's own; its bytes stay together.
    assert.ok(receivedWith(id).raw.includes(headersOnly));
    assert.equal(provider.messages.filter((m) => m.envelope.mailFrom === emptySender).length, 1);
  });

  test('bare LF line ends in DATA reach the provider as CRLF (openssl s_client, bytes as given)', async () => {
    const id = uniqueId('bare-lf');
    const message = `Subject: bare LF\nMessage-ID: ${id}\n\nline one\nline two\r\n`;
    const result = await opensslClient({
      host: HOST,
      port: bridge.ports.starttls!,
      security: 'starttls',
      tlsVersion: 'TLSv1.2',
      mechanism: 'PLAIN',
      ...sloppy,
      message,
    });
    assert.ok(result.ok, result.transcript);
    const raw = receivedWith(id).raw.toString('latin1');
    assert.ok(raw.includes(`Subject: bare LF\r\nMessage-ID: ${id}\r\n\r\nline one\r\nline two\r\n`), raw);
    assert.doesNotMatch(raw, /(^|[^\r])\n/);
  });
});

describe('SMTP smuggling stays impossible', () => {
  test('only <CRLF>.<CRLF> ends DATA: <LF>.<LF>, <CR>.<CR><LF> and the like are message content', async () => {
    const id = uniqueId('smuggling-probe');
    // Each sequence ends DATA on some server somewhere (SEC Consult, 2023); here each is followed by a smuggled transaction.
    const sequences = ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r.\n', '\r\n.\r', '\n..\n'];
    const smuggled = sequences.map(
      (sequence, i) =>
        `${sequence}MAIL FROM:<${sloppy.from}>\r\nRCPT TO:<owner@example.com>\r\nDATA\r\nMessage-ID: <smuggled-${i}-${id.slice(1)}\r\n\r\nsmuggled ${i}\r\n`,
    );
    const client = await session();
    await expectCode(client, `AUTH PLAIN ${plain(sloppy.username, sloppy.password)}`, 235);
    await startData(client, sloppy.from);
    client.write(`Subject: smuggling probe\r\nMessage-ID: ${id}\r\n\r\nfirst part${smuggled.join('')}\r\n.\r\n`);
    // One reply for the one message, then QUIT's: a DATA ended early would answer the smuggled commands in between.
    const replies = [await client.reply(), await client.command('QUIT')].map((r) => r?.code);
    client.close();
    assert.deepEqual(replies, [250, 221]);
    const raw = receivedWith(id).raw.toString('latin1');
    sequences.forEach((_sequence, i) => assert.ok(raw.includes(`smuggled ${i}\r\n`), `section ${i} is missing from the message`));
    assert.equal(provider.messages.filter((m) => m.raw.includes('<smuggled-0-')).length, 1, 'a smuggled message went out on its own');
  });
});

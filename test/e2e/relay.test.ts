import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import type { ClientOptions, Mechanism, TlsVersion } from '../support/client-options.js';
import { nodemailerClient } from '../support/nodemailer-client.js';
import { opensslClient } from '../support/openssl-client.js';
import { pythonSmtplib } from '../support/python-client.js';
import { swaks } from '../support/swaks-client.js';
import { makePki, type Pki } from '../support/pki.js';
import { providerYaml } from '../support/provider-yaml.js';
import { startDownPort, startUpstream, type ReceivedMessage, type Upstream } from '../support/upstream.js';

const HOST = '127.0.0.1';
let pkiDir: string;
let pki: Pki;
let provider: Upstream;
let starttlsProvider: Upstream;
let refusingProvider: Upstream;
let deferringProvider: Upstream;
let plaintextProvider: Upstream;
let bridge: TestBridge;

let counter = 0;
/** A message with a unique marker and bare-CRLF line ends, as a device would send it. */
function message(note = ''): { id: string; bytes: Buffer } {
  const id = `<test-${process.pid}-${++counter}@device.test>`;
  const text = `From: Doorphone <doorphone@example.net>\r\nTo: owner@example.com\r\nSubject: Someone rang ${counter}\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: ${id}\r\n\r\nVisitor at the door.${note}\r\n.leading dot line\r\n`;
  return { id, bytes: Buffer.from(text) };
}

function findByMessageId(upstream: Upstream, id: string): ReceivedMessage | undefined {
  return upstream.messages.find((m) => m.raw.includes(id));
}

const doorphone = { username: 'doorphone', password: 'door-secret', from: 'doorphone@example.net', to: ['owner@example.com'] };
const printer = { username: 'printer', password: 'printer-secret', from: 'printer@example.net', to: ['someone@example.org'] };

before(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  pki = await makePki(pkiDir);
  provider = await startUpstream({ pki, mode: 'implicit' });
  starttlsProvider = await startUpstream({ pki, mode: 'starttls' });
  refusingProvider = await startUpstream({
    pki,
    mode: 'implicit',
    onData: () => ({ code: 554, message: '5.7.1 Message refused as spam' }),
  });
  deferringProvider = await startUpstream({ pki, mode: 'implicit', onData: () => ({ code: 451, message: '4.3.0 Try again later' }) });
  plaintextProvider = await startUpstream({ pki, mode: 'starttls', offerStartTls: false });
  const downPort = await startDownPort();
  const upstream = (name: string, port: number, tls: 'implicit' | 'starttls' = 'implicit', password?: string) =>
    providerYaml({ name, port, caFile: pki.caFile, tls, password });
  const device = (name: string, upstreamName: string) => `  ${name}:
    password: ${name}-secret
    senders: ["${name}@example.net"]
    upstream: ${upstreamName}
`;
  bridge = await startTestBridge({
    yaml: `upstreams:
${upstream('provider', provider.port)}${upstream('starttls', starttlsProvider.port, 'starttls')}${upstream('refusing', refusingProvider.port)}${upstream('deferring', deferringProvider.port)}${upstream('plaintext', plaintextProvider.port, 'starttls')}${upstream('down', downPort)}${upstream('misconfigured', provider.port, 'implicit', 'wrong-secret')}
devices:
  doorphone:
    password: door-secret
    mechanisms: [CRAM-MD5, LOGIN, PLAIN]
    senders: [doorphone@example.net]
    recipients: [owner@example.com, "@family.example"]
    upstream: provider
  printer:
    password: printer-secret
    mechanisms: [PLAIN, LOGIN]
    senders: ["@example.net"]
    upstream: starttls
  scanner:
    auth: none
    networks: [127.0.0.2/32]
    senders: [scanner@example.net]
    upstream: provider
${device('refused', 'refusing')}${device('deferred', 'deferring')}${device('plain', 'plaintext')}${device('unreachable', 'down')}${device('badlogin', 'misconfigured')}`,
  });
});

after(async () => {
  await bridge?.stop();
  await Promise.all([provider, starttlsProvider, refusingProvider, deferringProvider, plaintextProvider].map((u) => u?.close()));
  await rm(pkiDir, { recursive: true, force: true });
});

/** Sends with a client and checks the provider got the message byte for byte, with the device's envelope, over TLS 1.2+ with PLAIN. */
async function assertRelayed(
  result: { ok: boolean; code: number | null; transcript: string },
  sent: { id: string; bytes: Buffer },
  envelope: { from: string; to: string[] },
  upstream = provider,
) {
  assert.ok(result.ok, `client failed (${result.code}):\n${result.transcript}`);
  assert.equal(result.code, 250);
  const received = findByMessageId(upstream, sent.id);
  assert.ok(received, 'provider did not receive the message');
  // Cleanup prepends one trace header; everything the device sent follows byte for byte.
  const trace = received.raw.subarray(0, received.raw.length - sent.bytes.length).toString('latin1');
  assert.match(
    trace,
    /^Received: from \S+ \(\[127\.0\.0\.[12]\]\)\r\n\tby bridge\.test \(smtp-bridge\) with E?SMTPS?A?(?: [^\r]*)?\r\n\tid [0-9A-Z]{19} \(device \w+[^)]*\);\r\n\t\w{3}, \d\d \w{3} \d{4} [\d:]{8} \+0000\r\n$/,
  );
  assert.deepEqual(received.raw.subarray(trace.length), sent.bytes);
  assert.deepEqual(received.envelope, { mailFrom: envelope.from, rcptTo: envelope.to });
  assert.equal(received.authUser, 'relay@example.net');
  assert.equal(received.authMethod, 'PLAIN');
  assert.match(received.tlsProtocol ?? '', /^TLSv1\.[23]$/);
}

const base = (port: number, security: ClientOptions['security']) => ({ host: HOST, port, security });

describe('legacy devices in, TLS 1.2+ with AUTH PLAIN out', () => {
  test('openssl s_client: STARTTLS with TLS 1.0 and CRAM-MD5', async () => {
    const sent = message();
    const result = await opensslClient({
      ...base(bridge.ports.starttls!, 'starttls'),
      tlsVersion: 'TLSv1',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      message: sent.bytes,
    });
    assert.equal(result.tlsVersion, 'TLSv1');
    assert.deepEqual(result.replies.find((r) => r.code === 235)?.code, 235);
    await assertRelayed(result, sent, doorphone);
    const accept = bridge.logs.find((l) => l.msg === 'accepted' && l.message_id === sent.id);
    assert.ok(accept);
    assert.equal(accept.tls, 'TLSv1');
    assert.equal(accept.sasl_method, 'CRAM-MD5');
    assert.equal(accept.sasl_username, 'doorphone');
    assert.equal(accept.device, 'doorphone');
    assert.equal(accept.size, findByMessageId(provider, sent.id)?.raw.length);
    const delivered = bridge.logs.find((l) => l.msg === 'delivered' && l.queue_id === accept.queue_id);
    assert.ok(delivered);
    assert.equal(delivered.upstream, 'provider');
    assert.match(String(delivered.response), /^250 /);
  });

  for (const tlsVersion of ['TLSv1', 'TLSv1.1'] satisfies TlsVersion[]) {
    for (const mechanism of ['CRAM-MD5', 'LOGIN', 'PLAIN'] satisfies Mechanism[]) {
      test(`python smtplib: STARTTLS pinned to ${tlsVersion} with ${mechanism}`, async () => {
        const sent = message();
        const result = await pythonSmtplib({
          ...base(bridge.ports.starttls!, 'starttls'),
          tlsVersion,
          mechanism,
          ...doorphone,
          message: sent.bytes,
        });
        assert.equal(result.tlsVersion, tlsVersion);
        await assertRelayed(result, sent, doorphone);
      });
    }
  }

  test('python smtplib: implicit TLS (465-style) with TLS 1.0 and CRAM-MD5', async () => {
    const sent = message();
    const result = await pythonSmtplib({
      ...base(bridge.ports.implicit!, 'implicit'),
      tlsVersion: 'TLSv1',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      message: sent.bytes,
    });
    assert.equal(result.tlsVersion, 'TLSv1');
    await assertRelayed(result, sent, doorphone);
  });

  test('nodemailer as a modern client: TLS 1.3, PLAIN, relayed through a STARTTLS provider', async () => {
    const sent = message();
    const result = await nodemailerClient({
      ...base(bridge.ports.starttls!, 'starttls'),
      mechanism: 'PLAIN',
      ...printer,
      message: sent.bytes,
    });
    assert.equal(result.tlsVersion, 'TLSv1.3');
    await assertRelayed(result, sent, printer, starttlsProvider);
    assert.match(result.response ?? '', /^250 2\.0\.0 Relayed: 250 /);
  });

  test('swaks: STARTTLS with TLS 1.0 and CRAM-MD5', async (t) => {
    const sent = message();
    const result = await swaks({
      ...base(bridge.ports.starttls!, 'starttls'),
      tlsVersion: 'TLSv1',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      message: sent.bytes,
    });
    if (result.skipped) return t.skip('swaks is not installed');
    assert.equal(result.tlsVersion, 'TLSv1');
    await assertRelayed(result, sent, doorphone);
  });

  test('a device without AUTH is known by its address alone', async () => {
    const sent = message();
    const envelope = { from: 'scanner@example.net', to: ['anyone@example.org'] };
    const result = await pythonSmtplib({
      ...base(bridge.ports.none!, 'none'),
      sourceAddress: '127.0.0.2',
      ...envelope,
      message: sent.bytes,
    });
    await assertRelayed(result, sent, envelope);
    const accept = bridge.logs.find((l) => l.msg === 'accepted' && l.message_id === sent.id);
    assert.equal(accept?.device, 'scanner');
    assert.equal(accept?.client_ip, '127.0.0.2');
    assert.equal(accept?.sasl_method, undefined);
  });
});

describe('refusals a device gets', () => {
  const starttls = () => base(bridge.ports.starttls!, 'starttls');

  test('wrong password and unknown user get the same 535', async () => {
    const wrong = await opensslClient({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      password: 'nope',
      message: message().bytes,
    });
    const unknown = await opensslClient({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      username: 'ghost',
      message: message().bytes,
    });
    const wrongReply = wrong.replies.find((r) => r.code === 535);
    const unknownReply = unknown.replies.find((r) => r.code === 535);
    assert.ok(wrongReply && unknownReply, `${wrong.transcript}\n${unknown.transcript}`);
    assert.equal(wrongReply.text, '5.7.8 Authentication credentials invalid');
    assert.equal(unknownReply.text, wrongReply.text);
    const failures = bridge.logs.filter((l) => l.msg === 'authentication failed');
    assert.ok(failures.some((l) => l.reason === 'bad-password' && l.sasl_username === 'doorphone' && l.device === 'doorphone'));
    assert.ok(failures.some((l) => l.reason === 'unknown-user' && l.sasl_username === 'ghost'));
    assert.ok(!JSON.stringify(bridge.logs).includes('door-secret'), 'a password reached the log');
  });

  test('a mechanism the device may not use is refused with 535', async () => {
    const result = await pythonSmtplib({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...printer,
      message: message().bytes,
    });
    assert.equal(result.ok, false);
    assert.equal(result.code, 535);
    assert.ok(bridge.logs.some((l) => l.msg === 'authentication failed' && l.reason === 'mechanism-not-allowed' && l.device === 'printer'));
  });

  test('AUTH before STARTTLS is refused with 538 and AUTH is not advertised in cleartext', async () => {
    const result = await pythonSmtplib({
      ...base(bridge.ports.none!, 'none'),
      mechanism: 'PLAIN',
      ...doorphone,
      forceAuth: true,
      message: message().bytes,
    });
    assert.equal(result.code, 538, result.transcript);
    assert.match(result.transcript, /5\.7\.11/);
    assert.doesNotMatch(result.transcript, /250[- ]AUTH/);
  });

  test('MAIL before AUTH gets 530', async () => {
    const result = await pythonSmtplib({ ...starttls(), tlsVersion: 'TLSv1.2', mechanism: null, ...doorphone, message: message().bytes });
    assert.equal(result.code, 530, result.transcript);
  });

  test('a sender or recipient the device may not use gets 550 5.7.1', async () => {
    const badSender = await pythonSmtplib({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      from: 'ceo@example.net',
      message: message().bytes,
    });
    assert.equal(badSender.code, 550, badSender.transcript);
    assert.match(badSender.transcript, /5\.7\.1/);
    const badRecipient = await pythonSmtplib({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      to: ['victim@elsewhere.example'],
      message: message().bytes,
    });
    assert.equal(badRecipient.code, 550, badRecipient.transcript);
    assert.match(badRecipient.transcript, /5\.7\.1/);
    const domainRecipient = await pythonSmtplib({
      ...starttls(),
      tlsVersion: 'TLSv1.2',
      mechanism: 'CRAM-MD5',
      ...doorphone,
      to: ['kid@Family.example'],
      message: message().bytes,
    });
    assert.equal(domainRecipient.code, 250, domainRecipient.transcript);
  });

  test('a device without AUTH, from an address not in its networks, gets 530', async () => {
    const result = await pythonSmtplib({
      ...base(bridge.ports.none!, 'none'),
      sourceAddress: '127.0.0.3',
      from: 'scanner@example.net',
      to: ['a@example.org'],
      message: message().bytes,
    });
    assert.equal(result.code, 530, result.transcript);
  });
});

describe('what the device hears from the provider', () => {
  const send = (device: string) =>
    pythonSmtplib({
      ...base(bridge.ports.starttls!, 'starttls'),
      tlsVersion: 'TLSv1.2',
      mechanism: 'PLAIN',
      username: device,
      password: `${device}-secret`,
      from: `${device}@example.net`,
      to: ['x@example.org'],
      message: message().bytes,
    });
  const queueIdOf = (transcript: string) => /Queued as ([0-9A-Z]+)/.exec(transcript)?.[1];

  /** The message is the bridge's now: 250 "queued", kept in the spool, and a `deferred` line says why. */
  function assertQueued(result: { code: number | null; transcript: string }, why: RegExp) {
    assert.equal(result.code, 250, result.transcript);
    const id = queueIdOf(result.transcript);
    assert.ok(id, result.transcript);
    assert.ok(existsSync(join(bridge.dir, 'spool', 'queue', `${id}.msg`)));
    const deferred = bridge.logs.find((l) => l.msg === 'deferred' && l.queue_id === id);
    assert.ok(deferred, 'no deferred line');
    assert.equal(deferred.attempt, 1);
    assert.match(String(deferred.response), why);
  }

  test('provider down: 250 queued, kept for retry', async () => {
    assertQueued(await send('unreachable'), /ECONNREFUSED/);
  });

  test('provider 5xx: 554 with the provider enhanced code and text, message kept in the failed area', async () => {
    const result = await send('refused');
    assert.equal(result.code, 554, result.transcript);
    assert.match(result.transcript, /5\.7\.1 Upstream refused the message: .*Message refused as spam/);
    assert.equal(refusingProvider.messages.length, 0);
    const bounced = bridge.logs.find((l) => l.msg === 'bounced' && l.device === 'refused');
    assert.ok(bounced);
    const failed = JSON.parse(readFileSync(join(bridge.dir, 'spool', 'failed', `${String(bounced.queue_id)}.state`), 'utf8'));
    assert.match(failed.reason, /Message refused as spam/);
  });

  test('provider 4xx: 250 queued, with the provider text logged', async () => {
    assertQueued(await send('deferred'), /Try again later/);
  });

  test("the bridge's own provider login refused: 250 queued, never given up on as the message's fault", async () => {
    assertQueued(await send('badlogin'), /^AUTH PLAIN: 535 /);
  });

  test('provider without STARTTLS: 250 queued, and the password is never sent', async () => {
    assertQueued(await send('plain'), /STARTTLS/);
    assert.equal(plaintextProvider.authAttempts.length, 0);
    assert.equal(plaintextProvider.messages.length, 0);
  });
});

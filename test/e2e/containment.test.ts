import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { formatStoredSecret } from '../../src/auth/stored-secret.js';
import { hashSecret } from '../../src/auth/hash-secret.js';
import { logsAbout as logsIn, startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import { runCli, type CliResult } from '../support/cli.js';
import type { ClientOptions, ClientResult, Mechanism, TlsVersion } from '../support/client-options.js';
import { makePki, type Pki } from '../support/pki.js';
import { submitAs } from '../support/submission.js';
import { startDownPort, startUpstream, type Upstream } from '../support/upstream.js';
import { waitUntil } from '../support/wait.js';

/**
 * Field note 2 as tests: a leaked device password can send only what that
 * device may send, from where it lives, at its usual pace, and the operator
 * hears at once when it tries more. One bridge, one device per rule, real
 * clients from different loopback addresses. Guessing passwords is in
 * lockout.test.ts.
 */

const HASHED_PASSWORD = 'stored-not-plain';

let pkiDir: string;
let pki: Pki;
let flaky: Upstream;
/** While true the flaky provider answers 451, so messages stay queued. */
let flakyRefuses = true;
let webhook: Server;
const webhookBodies: Record<string, unknown>[] = [];
let alertDir: string;
let bridge: TestBridge;

before(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  pki = await makePki(pkiDir);
  alertDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-alert-'));
  flaky = await startUpstream({
    pki,
    mode: 'implicit',
    onData: () => (flakyRefuses ? { code: 451, message: '4.3.0 Try again later' } : undefined),
  });
  webhook = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      webhookBodies.push(JSON.parse(body) as Record<string, unknown>);
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  const downPort = await startDownPort();
  const secret = [
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'SCRYPT')),
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'CRAM-MD5')),
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'DIGEST-MD5', { username: 'hashed', realm: 'bridge.test' })),
  ];
  const cramOnly = formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'CRAM-MD5'));
  const device = (name: string, extra = '', upstream = 'capture') => `  ${name}:
    password: ${name}-secret
    senders: ["${name}@example.net"]
    upstream: ${upstream}
${extra.replace(/^/gm, '    ')}
`;
  bridge = await startTestBridge({
    address: '::',
    cleartextListenerExtra: 'allow_cleartext_auth: true',
    yaml: `delivery: { sync_wait: 2s, retry_initial: 500ms, retry_max: 1s }
alert:
  webhook: http://127.0.0.1:${(webhook.address() as AddressInfo).port}/frozen
  command: 'printf %s "$SMTP_BRIDGE_DEVICE" > ${alertDir}/device; cat > ${alertDir}/event.json'
upstreams:
  capture: { type: directory, path: captured }
  flaky: { host: 127.0.0.1, port: ${flaky.port}, tls: implicit, ca_file: ${pki.caFile}, auth: { user: relay@example.net, password: upstream-secret } }
  down: { host: 127.0.0.1, port: ${downPort}, tls: implicit, connect_timeout: 1s, auth: { user: relay@example.net, password: upstream-secret } }
devices:
${device('doorphone', 'networks: [127.0.0.1/32, "::1/128"]\nrecipients: ["@example.com"]\nmax_recipients: 2\nmax_size: 2KB')}${device('modern', 'min_tls: TLSv1.2')}${device('legacy', 'allow_cleartext_auth: true\nnetworks: [127.0.0.5]')}${device('budgeted', 'limits: { messages: 2/10s }\nfreeze_after: false')}${device('spammer', 'limits: { messages: 2/1h }\nfreeze_after: 4/1h', 'flaky')}${device('cannon', 'limits: { messages: 1/1h }\nfreeze_after: 2/1h', 'down')}  hashed:
    secret: ${JSON.stringify(secret)}
    mechanisms: [PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5]
    senders: ["hashed@example.net"]
    upstream: capture
  cramonly:
    secret: "${cramOnly}"
    mechanisms: [CRAM-MD5]
    senders: ["cramonly@example.net"]
    upstream: capture
`,
  });
});

after(async () => {
  await bridge?.stop();
  await flaky?.close();
  await new Promise((resolve) => webhook?.close(resolve));
  await rm(pkiDir, { recursive: true, force: true });
  await rm(alertDir, { recursive: true, force: true });
});

const send = (device: string, options: Partial<ClientOptions> = {}): Promise<ClientResult> => submitAs(bridge, device, options);
const logsAbout = (msg: string, fields: Record<string, unknown>): LogLine[] => logsIn(bridge.logs, msg, fields);

const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '-c', bridge.file]);

describe('where a device may log in from, and how', () => {
  test('the right password from outside the device networks gets the same 535 as a wrong one, logged as what it is', async () => {
    const elsewhere = await send('doorphone', { sourceAddress: '127.0.0.2' });
    const wrong = await send('doorphone', { sourceAddress: '127.0.0.2', password: 'nope' });
    assert.equal(elsewhere.code, 535, elsewhere.transcript);
    assert.equal(wrong.code, 535, wrong.transcript);
    assert.equal(
      elsewhere.transcript.split('\n').find((l) => l.includes('535')),
      wrong.transcript.split('\n').find((l) => l.includes('535')),
    );
    assert.equal(
      logsAbout('authentication failed', {
        device: 'doorphone',
        client_ip: '127.0.0.2',
        reason: 'network-not-allowed',
        sasl_method: 'PLAIN',
      }).length,
      1,
    );
    assert.equal(logsAbout('authentication failed', { device: 'doorphone', client_ip: '127.0.0.2', reason: 'bad-password' }).length, 1);
  });

  test('IPv6 (::1) and IPv4 clients of a dual-stack listener match their own networks', async () => {
    const v6 = await send('doorphone', { host: '::1' });
    assert.equal(v6.code, 250, v6.transcript);
    const v4 = await send('doorphone');
    assert.equal(v4.code, 250, v4.transcript);
    assert.equal(logsAbout('authenticated', { device: 'doorphone', client_ip: '::1' }).length, 1);
    assert.ok(logsAbout('authenticated', { device: 'doorphone', client_ip: '127.0.0.1' }).length >= 1);
  });

  test('cleartext AUTH works for exactly the one device that allows it, and only from its networks', async () => {
    const none = { port: bridge.ports.none!, security: 'none' as const, tlsVersion: undefined };
    const legacy = await send('legacy', { ...none, sourceAddress: '127.0.0.5' });
    assert.equal(legacy.code, 250, legacy.transcript);
    assert.match(legacy.transcript, /250[- ]AUTH /, 'AUTH is offered in cleartext to the device address');
    assert.equal(logsAbout('authenticated', { device: 'legacy', tls: 'none' }).length, 1);

    const other = await send('doorphone', { ...none, sourceAddress: '127.0.0.5', forceAuth: true });
    assert.equal(other.code, 538, other.transcript);
    assert.equal(logsAbout('authentication failed', { sasl_username: 'doorphone', reason: 'cleartext-not-allowed' }).length, 1);

    const elsewhere = await send('legacy', { ...none, sourceAddress: '127.0.0.6', forceAuth: true });
    assert.equal(elsewhere.code, 538, elsewhere.transcript);
    assert.doesNotMatch(elsewhere.transcript, /250[- ]AUTH/, 'AUTH is not even offered to other addresses');

    const afterTls = await send('legacy', { sourceAddress: '127.0.0.5' });
    assert.equal(afterTls.code, 250, `the same device over TLS still works\n${afterTls.transcript}`);
  });

  test('min_tls: a device that set TLSv1.2 is refused over TLS 1.0 while an old one still uses it', async () => {
    const old = await send('modern', { tlsVersion: 'TLSv1', mechanism: 'CRAM-MD5' });
    assert.equal(old.code, 535, old.transcript);
    assert.equal(logsAbout('authentication failed', { device: 'modern', reason: 'tls-too-old' }).length, 1);
    for (const tlsVersion of ['TLSv1.2', 'TLSv1.3'] satisfies TlsVersion[]) {
      const current = await send('modern', { tlsVersion });
      assert.equal(current.code, 250, current.transcript);
    }
    const legacyDevice = await send('doorphone', { tlsVersion: 'TLSv1', mechanism: 'CRAM-MD5' });
    assert.equal(legacyDevice.code, 250, legacyDevice.transcript);
  });

  test('stored secrets: each form authenticates the mechanisms it serves with real clients, and none other', async () => {
    for (const mechanism of ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5'] satisfies Mechanism[]) {
      const result = await send('hashed', { mechanism, password: HASHED_PASSWORD });
      assert.equal(result.code, 250, `${mechanism}\n${result.transcript}`);
    }
    const cram = await send('cramonly', { mechanism: 'CRAM-MD5', password: HASHED_PASSWORD });
    assert.equal(cram.code, 250, cram.transcript);
    const plain = await send('cramonly', { mechanism: 'PLAIN', password: HASHED_PASSWORD });
    assert.equal(plain.code, 535, `a CRAM-MD5 form cannot check a PLAIN password\n${plain.transcript}`);
    assert.ok(!JSON.stringify(bridge.logs).includes(HASHED_PASSWORD), 'a password reached the log');
  });
});

describe('what a device may send', () => {
  test('max_recipients: the recipient past the limit gets 452 4.5.3, the others go through', async () => {
    const result = await send('doorphone', { to: ['a@example.com', 'b@example.com', 'c@example.com'] });
    assert.equal(result.code, 250, result.transcript);
    assert.match(result.transcript, /rcpt: 452 4\.5\.3 Too many recipients for this device/);
    assert.equal(logsAbout('recipient refused', { device: 'doorphone', to: 'c@example.com', rule: 'max_recipients' }).length, 1);
  });

  test('max_size: a message over the device limit (within the global one) gets 552 5.3.4', async () => {
    const big = `Subject: big\r\n\r\n${'x'.repeat(3000)}\r\n`;
    const result = await send('doorphone', { message: big });
    assert.equal(result.code, 552, result.transcript);
    assert.match(result.transcript, /5\.3\.4 Message exceeds fixed maximum message size 2048/);
    assert.equal(logsAbout('message over size limit', { device: 'doorphone', rule: 'max_size', limit: 2048 }).length, 1);
  });

  test('a recipient outside the device rules gets 550 5.7.1, naming the device and rule in the log', async () => {
    const result = await send('doorphone', { to: ['victim@elsewhere.example'] });
    assert.equal(result.code, 550, result.transcript);
    assert.equal(logsAbout('recipient refused', { device: 'doorphone', rule: 'recipients' }).length, 1);
  });
});

describe('budgets and the freeze', () => {
  test('over the messages budget: 450 4.7.1 and a warning; within budget again once the window has passed', async () => {
    assert.equal((await send('budgeted')).code, 250);
    // The first message was counted at its MAIL FROM, before this moment: the window runs out 10 s after it at the latest.
    const first = Date.now();
    assert.equal((await send('budgeted')).code, 250);
    const over = await send('budgeted');
    assert.equal(over.code, 450, over.transcript);
    assert.match(over.transcript, /4\.7\.1 Sending budget of this device exceeded \(messages 2\/10s\)/);
    assert.equal(logsAbout('over budget', { device: 'budgeted', rule: 'messages', limit: '2/10s', level: 'warn' }).length, 1);
    await sleep(Math.max(0, first + 10_100 - Date.now()));
    const again = await send('budgeted');
    assert.equal(again.code, 250, again.transcript);
  });

  test('a device pushing past freeze_after is frozen: AUTH fails, its queue is held, an alert fires; the freeze survives a restart until unfrozen with --release', async () => {
    // Two messages within budget, queued because the provider answers 451 for now.
    for (let i = 0; i < 2; i++) {
      const queued = await send('spammer');
      assert.equal(queued.code, 250, queued.transcript);
      assert.match(queued.transcript, /Queued as/);
    }
    const overBudget = [await send('spammer'), await send('spammer')];
    assert.deepEqual(
      overBudget.map((r) => r.code),
      [450, 450],
    );
    const freezing = await send('spammer');
    assert.equal(freezing.code, 550, freezing.transcript);
    assert.match(freezing.transcript, /5\.7\.1 Sending suspended for this device/);
    const [frozen] = logsAbout('device frozen', { device: 'spammer', level: 'error' });
    assert.ok(frozen, 'no "device frozen" line');
    assert.equal(frozen.client_ip, '127.0.0.1');
    assert.equal(frozen.sasl_username, 'spammer');

    const [webhook] = await waitUntil('the webhook alert', () => webhookBodies.length > 0 && webhookBodies);
    assert.equal(webhookBodies.length, 1);
    assert.equal(webhook.event, 'device-frozen');
    assert.equal(webhook.device, 'spammer');
    assert.equal(webhook.hostname, 'bridge.test');
    // Read until the command has written the whole event, not a part of it.
    const event = await waitUntil('the command alert', async () => {
      const written = await readFile(join(alertDir, 'event.json'), 'utf8').catch(() => '');
      return written.includes('spammer') && written.trimEnd().endsWith('}') && (JSON.parse(written) as Record<string, unknown>);
    });
    assert.equal(event.event, 'device-frozen');
    assert.equal(event.device, 'spammer');
    assert.equal(await readFile(join(alertDir, 'device'), 'utf8'), 'spammer');
    const sent = await waitUntil('both alerts logged', () => {
      const lines = logsAbout('alert sent', { device: 'spammer' });
      return lines.length === 2 && lines;
    });
    assert.deepEqual(sent.map((line) => line.via).sort(), ['command', 'webhook']);

    const refused = await send('spammer');
    assert.equal(refused.code, 535, refused.transcript);
    assert.equal(logsAbout('authentication failed', { device: 'spammer', reason: 'device-frozen' }).length, 1);

    // The provider would take the messages now, but they are held.
    flakyRefuses = false;
    await sleep(1500);
    assert.equal(flaky.messages.length, 0, 'a held message was delivered');

    const listed = await cli('device', 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^spammer +spammer +\S+ +FROZEN since \S+ +2 +4\/1h +2\/1h messages$/m);
    assert.match(listed.stdout, /^doorphone +doorphone .* active +0 +never +none$/m);
    assert.match(listed.stdout, /^spammer frozen: 5 message attempts within 1h \(freeze_after 4\/1h\)$/m);

    await bridge.restart();
    assert.equal(logsAbout('device is frozen: AUTH refused, queued messages held', { device: 'spammer' }).length, 1);
    const afterRestart = await send('spammer');
    assert.equal(afterRestart.code, 535, afterRestart.transcript);
    await sleep(1000);
    assert.equal(flaky.messages.length, 0, 'a held message was delivered after the restart');

    const undecided = await cli('device', 'unfreeze', 'spammer');
    assert.equal(undecided.code, 1);
    assert.match(undecided.stderr, /device "spammer" has 2 queued messages: add --release to deliver them or --drop to delete them/);

    const released = await cli('device', 'unfreeze', 'spammer', '--release');
    assert.equal(released.code, 0, released.stderr);
    assert.match(released.stdout, /device "spammer" unfrozen .*; 2 queued messages released for delivery/);
    const releasedMessages = await flaky.waitForMessages(2, 8000);
    assert.deepEqual(
      releasedMessages.map((m) => m.envelope.mailFrom),
      ['spammer@example.net', 'spammer@example.net'],
    );
    const works = await send('spammer');
    assert.equal(works.code, 250, works.transcript);

    const again = await cli('device', 'unfreeze', 'spammer', '--release');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /device "spammer" is not frozen/);
  });

  test('unfreeze --drop deletes the frozen device queued messages, and only those', async () => {
    const queued = await send('cannon');
    assert.equal(queued.code, 250, queued.transcript);
    assert.equal((await send('cannon')).code, 450);
    assert.equal((await send('cannon')).code, 550);
    const queue = join(bridge.dir, 'spool', 'queue');
    const cannonIds = async () =>
      (
        await Promise.all(
          (await readdir(queue))
            .filter((n) => n.endsWith('.msg'))
            .map(async (n) => JSON.parse((await readFile(join(queue, n), 'utf8')).split('\n')[0]) as { conn: { device: string } }),
        )
      ).filter((record) => record.conn.device === 'cannon').length;
    assert.equal(await cannonIds(), 1);
    const dropped = await cli('device', 'unfreeze', 'cannon', '--drop');
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stdout, /device "cannon" unfrozen .*; 1 queued message deleted/);
    assert.equal(await cannonIds(), 0);
    assert.equal((await cli('device', 'list', '--json')).stdout.includes('"state": "frozen"'), false);
  });
});

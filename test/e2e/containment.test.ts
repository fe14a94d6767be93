import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { formatStoredSecret } from '../../src/auth/stored-secret.js';
import { hashSecret } from '../../src/auth/hash-secret.js';
import { logsAbout as logsIn, startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import type { ClientOptions, ClientResult, Mechanism, TlsVersion } from '../support/client-options.js';
import { deviceYaml, submitAs } from '../support/configured-device.js';

/**
 * Field note 2 as tests: a leaked device password can send only what that
 * device may send, from where it lives, at its usual pace, and the operator
 * hears at once when it tries more. One bridge, one device per rule, real
 * clients from different loopback addresses. Budgets and the freeze are in
 * freeze.test.ts, guessing passwords in lockout.test.ts.
 */

const HASHED_PASSWORD = 'stored-not-plain';

let bridge: TestBridge;

before(async () => {
  const secret = [
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'SCRYPT')),
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'CRAM-MD5')),
    formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'DIGEST-MD5', { username: 'hashed', realm: 'bridge.test' })),
  ];
  const cramOnly = formatStoredSecret(await hashSecret(HASHED_PASSWORD, 'CRAM-MD5'));
  bridge = await startTestBridge({
    address: '::',
    cleartextListenerExtra: 'allow_cleartext_auth: true',
    yaml: `upstreams:
  capture: { type: directory, path: captured }
devices:
${deviceYaml('doorphone', 'networks: [127.0.0.1/32, "::1/128"]\nrecipients: ["@example.com"]\nmax_recipients: 2\nmax_size: 2KB')}${deviceYaml('modern', 'min_tls: TLSv1.2')}${deviceYaml('legacy', 'allow_cleartext_auth: true\nnetworks: [127.0.0.5]')}  hashed:
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

after(() => bridge?.stop());

const send = (device: string, options: Partial<ClientOptions> = {}): Promise<ClientResult> => submitAs(bridge, device, options);
const logsAbout = (msg: string, fields: Record<string, unknown>): LogLine[] => logsIn(bridge.logs, msg, fields);

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

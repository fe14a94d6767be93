import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { TestBridge } from '../support/bridge.js';
import type { TlsVersion } from '../support/client-options.js';
import { opensslClient } from '../support/openssl-client.js';
import { startRelay, type Relay } from '../support/relay.js';

/**
 * The suites README's TLS table promises, each proved by a client that offers
 * that one suite alone and sends a message through it, and what the table says
 * cannot work, proved on the TLS library the bridge runs on.
 */

/** CBC-SHA suites, with ECDHE, DHE and plain RSA key exchange: what TLS 1.0/1.1 firmware offers. */
const CBC_SHA = ['ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA', 'DHE-RSA-AES128-SHA', 'DHE-RSA-AES256-SHA', 'AES128-SHA', 'AES256-SHA'];
/** TLS 1.2's own suites (GCM, ChaCha20, CCM, ARIA, SHA-256/384 CBC). */
const TLS12_ONLY = [
  'DHE-RSA-AES128-CCM',
  'DHE-RSA-AES256-CCM',
  'DHE-RSA-AES128-CCM8',
  'DHE-RSA-AES256-CCM8',
  'AES128-CCM',
  'AES256-CCM',
  'AES128-CCM8',
  'AES256-CCM8',
  'ECDHE-ARIA128-GCM-SHA256',
  'ECDHE-ARIA256-GCM-SHA384',
  'DHE-RSA-ARIA128-GCM-SHA256',
  'DHE-RSA-ARIA256-GCM-SHA384',
  'ARIA128-GCM-SHA256',
  'ARIA256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-RSA-AES256-SHA384',
  'DHE-RSA-AES128-SHA256',
  'DHE-RSA-AES256-SHA256',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA256',
  'AES256-SHA256',
];
const TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];

const CELLS: [TlsVersion, string][] = [
  ...(['TLSv1', 'TLSv1.1', 'TLSv1.2'] as const).flatMap((version) => CBC_SHA.map((suite): [TlsVersion, string] => [version, suite])),
  ...TLS12_ONLY.map((suite): [TlsVersion, string] => ['TLSv1.2', suite]),
  ...TLS13.map((suite): [TlsVersion, string] => ['TLSv1.3', suite]),
];

const device = { username: 'camera', password: 'camera-secret', from: 'camera@example.net', to: ['owner@example.com'] };
let relay: Relay;
let bridge: TestBridge;
let counter = 0;

before(async () => {
  relay = await startRelay({
    devices: `  camera:
    password: ${device.password}
    mechanisms: [CRAM-MD5]
    senders: ["@example.net"]
    upstream: provider
`,
  });
  bridge = relay.bridge;
});

after(() => relay?.stop());

describe('suites a device can negotiate (tls.min_version: TLSv1, RSA certificate)', { concurrency: 2 }, () => {
  for (const [version, suite] of CELLS) {
    for (const mode of ['starttls', 'implicit'] as const) {
      test(`${version} ${suite} (${mode}), offered alone`, async () => {
        const id = `<tls-${process.pid}-${++counter}@device.test>`;
        const port = mode === 'starttls' ? bridge.ports.starttls! : bridge.ports.implicit!;
        // One suite, nothing else: a DHE-only client stays DHE-only. SECLEVEL 0 lets OpenSSL 3 offer TLS 1.0/1.1 at all.
        const cipher = version === 'TLSv1.3' ? suite : `${suite}:@SECLEVEL=0`;
        const result = await opensslClient({
          host: '127.0.0.1',
          port,
          security: mode,
          tlsVersion: version,
          cipher,
          mechanism: 'CRAM-MD5',
          ...device,
          message: `Message-ID: ${id}\r\n\r\n${suite}\r\n`,
        });
        assert.ok(result.ok, result.transcript);
        const accepted = bridge.logs.find((l) => l.msg === 'accepted' && l.message_id === id);
        assert.equal(accepted?.tls, version);
        assert.equal(accepted?.cipher, suite);
        // dhparam 'auto' sizes DHE to the 2048-bit RSA key; firmware limited to 1024-bit DH (Java 6/7 era) cannot use DHE.
        if (suite.startsWith('DHE-')) assert.match(result.transcript, /Server Temp Key: DH, 2048 bits/);
      });
    }
  }
});

describe('what cannot work, and why', () => {
  test('SSLv3, 3DES and RC4 are not in the OpenSSL that Node ships: no setting can offer them', () => {
    assert.throws(() => tls.createSecureContext({ minVersion: 'SSLv3' as tls.SecureVersion }), /not a valid minimum TLS protocol version/);
    for (const suite of ['DES-CBC3-SHA', 'ECDHE-RSA-DES-CBC3-SHA', 'RC4-SHA', 'RC4-MD5']) {
      assert.throws(() => tls.createSecureContext({ ciphers: `${suite}:@SECLEVEL=0` }), /no cipher match/, suite);
    }
    assert.ok(!tls.getCiphers().some((name) => /rc4|des-cbc3|^des-/.test(name)));
  });

  test('a client offering only suites the bridge does not (here Camellia) fails the handshake, logged as a connection error', async () => {
    const before = bridge.logs.length;
    const result = await opensslClient({
      host: '127.0.0.1',
      port: bridge.ports.implicit!,
      security: 'implicit',
      tlsVersion: 'TLSv1',
      cipher: 'CAMELLIA128-SHA:@SECLEVEL=0',
      mechanism: 'CRAM-MD5',
      ...device,
      message: 'x\r\n',
    });
    assert.equal(result.ok, false);
    assert.match(result.transcript, /handshake failure/);
    const logged = bridge.logs.slice(before).find((l) => l.msg === 'connection error');
    assert.match(String(logged?.err), /no shared cipher/);
  });
});

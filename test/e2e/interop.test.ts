import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestBridge } from '../support/bridge.js';
import type { ClientOptions, ClientResult, Mechanism, TlsVersion } from '../support/client-options.js';
import { curlClient } from '../support/curl-client.js';
import { msmtpClient } from '../support/msmtp-client.js';
import { opensslClient } from '../support/openssl-client.js';
import { pythonSmtplib } from '../support/python-client.js';
import { swaks } from '../support/swaks-client.js';
import { startRelay, type Relay } from '../support/relay.js';
import type { Upstream } from '../support/upstream.js';

/**
 * The interoperability matrix: every real client × PLAIN, LOGIN, CRAM-MD5 and
 * DIGEST-MD5 × TLS 1.0-1.3 × STARTTLS and implicit TLS, each cell a whole
 * message relayed to a TLS 1.2+ PLAIN-only provider. Every client can do
 * every cell, so every cell must pass; the matrix is printed at the end.
 */

const MECHANISMS: Mechanism[] = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5'];
const VERSIONS: TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const MODES = ['starttls', 'implicit'] as const;
type Mode = (typeof MODES)[number];

interface Client {
  name: string;
  run(opts: ClientOptions): Promise<ClientResult>;
  /** Where the client's DIGEST-MD5 comes from, when not from the client itself. */
  note?: string;
}

const CLIENTS: Client[] = [
  { name: 'swaks', run: swaks, note: 'SASL by Authen::SASL (Perl)' },
  { name: 'curl', run: curlClient },
  { name: 'msmtp', run: msmtpClient, note: 'SASL by GNU SASL, TLS by GnuTLS' },
  {
    name: 'python3 smtplib',
    run: pythonSmtplib,
    note: 'smtplib has no DIGEST-MD5: the driver hands smtplib.auth() an RFC 2831 client step',
  },
  { name: 'openssl s_client', run: opensslClient, note: 'the driver computes each SASL answer, as an operator pasting them would' },
];

/** A cell's outcome, keyed by client, mechanism, version and mode. */
const outcomes = new Map<string, 'ok' | 'FAIL'>();
const key = (client: string, mechanism: Mechanism, version: TlsVersion, mode: Mode) => `${client}|${mechanism}|${version}|${mode}`;

const device = { username: 'matrix', password: 'matrix-secret', from: 'matrix@example.net', to: ['owner@example.com'] };
let relay: Relay;
let bridge: TestBridge;
let provider: Upstream;
let counter = 0;

before(async () => {
  relay = await startRelay({
    devices: `  matrix:
    password: ${device.password}
    mechanisms: [PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5]
    senders: ["@example.net"]
    upstream: provider
`,
  });
  ({ bridge, provider } = relay);
});

after(async () => {
  console.log(renderMatrix());
  await relay?.stop();
});

function renderMatrix(): string {
  const columns = VERSIONS.flatMap((v) => MODES.map((m) => `${v === 'TLSv1' ? '1.0' : v.replace('TLSv', '')} ${m}`));
  const width = Math.max(...columns.map((c) => c.length));
  const rows = [['client', 'mechanism', ...columns]];
  for (const client of CLIENTS) {
    for (const mechanism of MECHANISMS) {
      const cells = VERSIONS.flatMap((v) => MODES.map((m) => outcomes.get(key(client.name, mechanism, v, m)) ?? 'not run'));
      rows.push([client.name, mechanism, ...cells]);
    }
  }
  const pad = (text: string, n: number) => text.padEnd(n);
  const lines = rows.map((row) => [pad(row[0], 17), pad(row[1], 10), ...row.slice(2).map((c) => pad(c, width))].join(' '));
  const notes = CLIENTS.flatMap((c) => (c.note ? [`${c.name}: ${c.note}`] : []));
  return ['interoperability matrix (TLS version, STARTTLS or implicit TLS):', ...lines, ...notes].join('\n');
}

for (const client of CLIENTS) {
  describe(`${client.name} against the bridge`, { concurrency: 2 }, () => {
    for (const mechanism of MECHANISMS) {
      for (const version of VERSIONS) {
        for (const mode of MODES) {
          test(`${mechanism}, ${version}, ${mode}`, async () => {
            const cell = key(client.name, mechanism, version, mode);
            outcomes.set(cell, 'FAIL');
            const id = `<matrix-${process.pid}-${++counter}@device.test>`;
            const message = Buffer.from(
              `From: <matrix@example.net>\r\nTo: <owner@example.com>\r\nSubject: ${cell}\r\nMessage-ID: ${id}\r\n\r\nOne cell of the matrix.\r\n`,
            );
            const port = mode === 'starttls' ? bridge.ports.starttls! : bridge.ports.implicit!;
            const result = await client.run({
              host: '127.0.0.1',
              port,
              security: mode,
              tlsVersion: version,
              mechanism,
              ...device,
              message,
            });
            assert.ok(result.ok, `${cell} failed (${result.code}):\n${result.transcript}`);
            assert.equal(result.code, 250);
            const accepted = bridge.logs.find((l) => l.msg === 'accepted' && l.message_id === id);
            assert.ok(accepted, 'no accept line for the message');
            assert.equal(accepted.tls, version);
            assert.equal(accepted.sasl_method, mechanism);
            assert.equal(accepted.sasl_username, device.username);
            assert.ok(
              provider.messages.some((m) => m.raw.includes(id)),
              'the provider did not get the message',
            );
            outcomes.set(cell, 'ok');
          });
        }
      }
    }
  });
}

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI } from '../support/cli.js';
import { startRelay, type Relay } from '../support/relay.js';

const exec = promisify(execFile);
const probe = (...args: string[]) => exec(process.execPath, [CLI, 'probe', ...args], { timeout: 60_000 });
const expiry = (pem: string) => new Date(new X509Certificate(pem).validTo).toISOString();

let relay: Relay;

before(async () => {
  relay = await startRelay({
    minVersion: 'TLSv1',
    devices: `  doorphone: { password: door-secret, mechanisms: [PLAIN, CRAM-MD5], senders: [door@example.net], upstream: provider }
`,
  });
});

after(() => relay?.stop());

test('probe of the hardened provider: TLS 1.2 and 1.3 only, AUTH after TLS, a certificate that verifies against its CA', async () => {
  const caFile = /ca_file: (\S+)/.exec(await readFile(relay.bridge.file, 'utf8'))![1];
  // The test PKI keeps the provider's certificate beside its CA.
  const certPem = await readFile(join(caFile, '..', 'server.crt'), 'utf8');
  const { stdout } = await probe(`127.0.0.1:${relay.provider.port}`, '--implicit', '--ca-file', caFile);
  assert.equal(
    stdout,
    `127.0.0.1:${relay.provider.port} (implicit TLS)

TLS      handshake  cipher
TLSv1    no         -
TLSv1.1  no         -
TLSv1.2  yes        ECDHE-RSA-AES128-GCM-SHA256
TLSv1.3  yes        TLS_AES_256_GCM_SHA384

EHLO        before TLS  after TLS
AUTH        -           PLAIN LOGIN
SIZE        -           no
PIPELINING  -           yes
SMTPUTF8    -           yes
STARTTLS    -           no

certificate
subject      CN=localhost
issuer       CN=smtp-bridge test CA
expires      ${expiry(certPem)}
verifies     yes, for 127.0.0.1

As an upstream: tls: implicit, auth.mechanism: PLAIN.
A device sees: TLS TLSv1.2 to TLSv1.3, AUTH PLAIN LOGIN.
`,
  );
});

test('probe of the bridge over STARTTLS: every TLS version down to 1.0, no AUTH before TLS, the mechanisms devices get after', async () => {
  const port = relay.bridge.ports.starttls!;
  const { stdout } = await probe(`127.0.0.1:${port}`, '--starttls');
  const certPem = await readFile(join(relay.bridge.dir, 'bridge.crt'), 'utf8');
  assert.equal(
    stdout,
    `127.0.0.1:${port} (STARTTLS)

TLS      handshake  cipher
TLSv1    yes        ECDHE-RSA-AES256-SHA
TLSv1.1  yes        ECDHE-RSA-AES256-SHA
TLSv1.2  yes        ECDHE-RSA-AES128-GCM-SHA256
TLSv1.3  yes        TLS_AES_256_GCM_SHA384

EHLO        before TLS  after TLS
AUTH        -           PLAIN CRAM-MD5
SIZE        26214400    26214400
PIPELINING  yes         yes
SMTPUTF8    yes         yes
STARTTLS    yes         no

certificate
subject      CN=localhost
issuer       CN=localhost
expires      ${expiry(certPem)}
verifies     no: DEPTH_ZERO_SELF_SIGNED_CERT

As an upstream: tls: starttls, auth.mechanism: PLAIN; the certificate does not verify: set ca_file, or check the host name.
A device sees: TLS TLSv1 to TLSv1.3, AUTH PLAIN CRAM-MD5.
`,
  );
});

test('probe of a port where nothing listens fails in one line', async () => {
  await assert.rejects(probe('127.0.0.1:1', '--timeout', '2'), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /^smtp-bridge: 127\.0\.0\.1:1: .*ECONNREFUSED/);
    return true;
  });
});

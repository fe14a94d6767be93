import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import type { ClientOptions, ClientResult } from '../support/client-options.js';
import { curlClient } from '../support/curl-client.js';
import { nodemailerClient } from '../support/nodemailer-client.js';
import { opensslClient } from '../support/openssl-client.js';
import { pythonSmtplib } from '../support/python-client.js';
import { swaks } from '../support/swaks-client.js';
import { makePki, makeSelfSigned, type Pki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { serveSmtp, startAcceptAllServer, startDownPort, startUpstream, type Upstream } from '../support/upstream.js';

const USER = 'relay@example.net';
const PASS = 'upstream-secret';
// A leading dot (stuffing), lines starting with Q and R (s_client commands) and UTF-8 bytes.
const MESSAGE = Buffer.from(
  'From: device@lan.test\r\nTo: me@example.com\r\nSubject: selftest\r\n\r\n' +
    '.leading dot\r\nQUIT is not a command here\r\nR neither\r\ngrüße\r\n',
  'utf8',
);

let dir: string;
let pki: Pki;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'smtp-bridge-selftest-'));
  pki = await makePki(path.join(dir, 'pki'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function client(port: number, security: ClientOptions['security'], extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    host: '127.0.0.1',
    port,
    security,
    username: USER,
    password: PASS,
    from: 'device@lan.test',
    to: ['me@example.com', 'you@example.com'],
    message: MESSAGE,
    ...extra,
  };
}

async function withUpstream(opts: Omit<Parameters<typeof startUpstream>[0], 'pki'>, use: (u: Upstream) => Promise<void>): Promise<void> {
  const upstream = await startUpstream({ pki, ...opts });
  try {
    await use(upstream);
  } finally {
    await upstream.close();
  }
}

describe('pki', () => {
  test('the CA signs a localhost certificate with both loopback IPs', async () => {
    const { X509Certificate } = await import('node:crypto');
    const ca = new X509Certificate(pki.caPem);
    const cert = new X509Certificate(pki.certPem);
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(ca.ca);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.checkIP('::1'), '::1');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  });

  test('makeSelfSigned issues a certificate signed by its own key', async () => {
    const { X509Certificate } = await import('node:crypto');
    const pair = await makeSelfSigned(path.join(dir, 'self'), 'bridge');
    const cert = new X509Certificate(pair.certPem);
    assert.ok(cert.verify(cert.publicKey));
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(path.basename(pair.keyFile), 'bridge.key');
  });
});

describe('hardened upstream', () => {
  for (const mode of ['implicit', 'starttls'] as const) {
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      test(`${mode}: nodemailer with ${mechanism} delivers the exact bytes`, () =>
        withUpstream({ mode }, async (upstream) => {
          const result = await nodemailerClient(client(upstream.port, mode, { mechanism, caFile: pki.caFile }));
          assert.ok(result.ok, result.transcript);
          assert.equal(result.code, 250);
          assert.equal(result.tlsVersion, 'TLSv1.3');
          const [message] = await upstream.waitForMessages(1, 5000);
          assert.deepEqual(message.raw, MESSAGE);
          assert.deepEqual(message.envelope, { mailFrom: 'device@lan.test', rcptTo: ['me@example.com', 'you@example.com'] });
          assert.equal(message.authUser, USER);
          assert.equal(message.authMethod, mechanism);
          assert.equal(message.tlsProtocol, 'TLSv1.3');
          assert.deepEqual(upstream.authAttempts, [{ method: mechanism, username: USER, ok: true, secure: true }]);
        }));
    }

    test(`${mode}: a TLS 1.1 client is refused during the handshake`, () =>
      withUpstream({ mode }, async (upstream) => {
        const result = await pythonSmtplib(client(upstream.port, mode, { mechanism: 'PLAIN', tlsVersion: 'TLSv1.1' }));
        assert.equal(result.ok, false);
        assert.equal(result.tlsVersion, null);
        assert.match(result.transcript, /SSL/);
        assert.match(upstream.errors.map((e) => e.message).join('\n'), /unsupported protocol|version/i);
        assert.equal(upstream.authAttempts.length, 0);
        assert.equal(upstream.messages.length, 0);
      }));

    test(`${mode}: python pinned to TLS 1.2 with PLAIN is accepted`, () =>
      withUpstream({ mode }, async (upstream) => {
        const result = await pythonSmtplib(client(upstream.port, mode, { mechanism: 'PLAIN', tlsVersion: 'TLSv1.2', caFile: pki.caFile }));
        assert.ok(result.ok, result.transcript);
        assert.equal(result.tlsVersion, 'TLSv1.2');
        const [message] = await upstream.waitForMessages(1, 5000);
        assert.equal(message.tlsProtocol, 'TLSv1.2');
        assert.deepEqual(message.raw, MESSAGE);
      }));
  }

  test('CRAM-MD5 is neither offered nor accepted', () =>
    withUpstream({ mode: 'implicit' }, async (upstream) => {
      const result = await opensslClient(client(upstream.port, 'implicit', { mechanism: 'CRAM-MD5', forceAuth: true }));
      assert.equal(result.ok, false);
      assert.equal(result.code, 504);
      const ehlo = result.replies.find((r) => r.text.includes('AUTH'));
      assert.match(ehlo?.text ?? '', /^AUTH PLAIN LOGIN$/m);
      assert.equal(upstream.authAttempts.length, 0);
    }));

  test('every client stops before AUTH when its mechanism is not advertised', () =>
    withUpstream({ mode: 'implicit' }, async (upstream) => {
      for (const run of [opensslClient, swaks, pythonSmtplib, curlClient, nodemailerClient]) {
        const result = await run(client(upstream.port, 'implicit', { mechanism: 'CRAM-MD5' }));
        if (result.skipped) continue;
        assert.equal(result.ok, false, `${run.name}: ${result.transcript}`);
        assert.equal(result.code, null, `${run.name}: ${result.transcript}`);
      }
      assert.equal(upstream.authAttempts.length, 0);
      assert.equal(upstream.messages.length, 0);
    }));

  test('wrong password: 535, attempt counted, no message', () =>
    withUpstream({ mode: 'implicit' }, async (upstream) => {
      const result = await nodemailerClient(client(upstream.port, 'implicit', { mechanism: 'PLAIN', password: 'wrong' }));
      assert.equal(result.ok, false);
      assert.equal(result.code, 535);
      assert.deepEqual(upstream.authAttempts, [{ method: 'PLAIN', username: USER, ok: false, secure: true }]);
      assert.doesNotMatch(JSON.stringify(upstream.authAttempts), /wrong/);
    }));

  test('without AUTH, MAIL FROM is refused', () =>
    withUpstream({ mode: 'implicit' }, async (upstream) => {
      const result = await opensslClient(client(upstream.port, 'implicit', { mechanism: null }));
      assert.equal(result.ok, false);
      assert.equal(result.code, 530);
    }));

  test('offerStartTls: false advertises no STARTTLS and shows a cleartext AUTH', () =>
    withUpstream({ mode: 'starttls', offerStartTls: false }, async (upstream) => {
      const refused = await pythonSmtplib(client(upstream.port, 'starttls', { mechanism: 'PLAIN' }));
      assert.equal(refused.ok, false);
      assert.match(refused.transcript, /does not offer STARTTLS/);
      assert.match(refused.transcript, /AUTH PLAIN LOGIN/);
      assert.equal(upstream.authAttempts.length, 0);

      const leaked = await pythonSmtplib(client(upstream.port, 'none', { mechanism: 'PLAIN' }));
      assert.ok(leaked.ok, leaked.transcript);
      assert.deepEqual(upstream.authAttempts, [{ method: 'PLAIN', username: USER, ok: true, secure: false }]);
      const [message] = await upstream.waitForMessages(1, 5000);
      assert.equal(message.tlsProtocol, null);
    }));

  test('onRcpt and onData inject replies', () =>
    withUpstream(
      {
        mode: 'implicit',
        onRcpt: (address) => (address === 'you@example.com' ? { code: 550, message: '5.1.1 no such user' } : undefined),
        onData: () => ({ code: 451, message: '4.3.0 try again later' }),
      },
      async (upstream) => {
        const result = await opensslClient(client(upstream.port, 'implicit', { mechanism: 'LOGIN' }));
        assert.equal(result.ok, false);
        assert.equal(result.code, 451);
        assert.ok(result.replies.some((r) => r.code === 550 && r.text === '5.1.1 no such user'));
        assert.equal(upstream.messages.length, 0);
      },
    ));

  test('waitForMessages times out with a count', () =>
    withUpstream({ mode: 'implicit' }, async (upstream) => {
      await assert.rejects(upstream.waitForMessages(1, 50), /to get 1 messages \(it has 0\)/);
    }));

  test('close() does not wait for an idle client', async () => {
    const upstream = await startUpstream({ pki, mode: 'starttls' });
    const socket = net.connect(upstream.port, upstream.host);
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('data', resolve));
    const started = Date.now();
    await upstream.close();
    assert.ok(Date.now() - started < 1000);
    socket.destroy();
  });
});

test('startDownPort gives a port that refuses connections', async () => {
  const port = await startDownPort();
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('error', resolve);
    socket.once('connect', () => resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })));
  });
  assert.equal(err.code, 'ECONNREFUSED');
});

test('the accept-all sink takes cleartext mail without AUTH', async () => {
  const sink = await startAcceptAllServer();
  try {
    const result = await nodemailerClient(client(sink.port, 'none'));
    assert.ok(result.ok, result.transcript);
    assert.equal(sink.received, 1);
  } finally {
    await sink.close();
  }
});

/** What a legacy-friendly server saw, to check the clients against the server's side. */
interface LegacySeen {
  remoteAddresses: string[];
  protocols: string[];
  auths: { method: string; ok: boolean }[];
  messages: Buffer[];
}

// Stands in for the bridge's inbound side: TLS 1.0+ and CRAM-MD5, as devices need.
async function withLegacyServer(mode: 'implicit' | 'starttls', use: (port: number, seen: LegacySeen) => Promise<void>): Promise<void> {
  const seen: LegacySeen = { remoteAddresses: [], protocols: [], auths: [], messages: [] };
  const server = new SMTPServer({
    secure: mode === 'implicit',
    key: pki.keyPem,
    cert: pki.certPem,
    minVersion: 'TLSv1',
    ciphers: 'DEFAULT:@SECLEVEL=0',
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      seen.remoteAddresses.push(session.remoteAddress);
      callback();
    },
    onSecure(socket, _session, callback) {
      seen.protocols.push((socket as tls.TLSSocket).getProtocol() ?? 'unknown');
      callback();
    },
    onAuth(auth, _session, callback) {
      const ok = auth.username === USER && (auth.method === 'CRAM-MD5' ? auth.validatePassword(PASS) : auth.password === PASS);
      seen.auths.push({ method: auth.method, ok });
      callback(null, ok ? { user: auth.username } : {});
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        seen.messages.push(Buffer.concat(chunks));
        callback();
      });
    },
  });
  server.on('error', () => {});
  const served = await serveSmtp(server);
  try {
    await use(served.port, seen);
  } finally {
    await served.close();
  }
}

describe('legacy clients negotiate TLS 1.0 and CRAM-MD5 for real', () => {
  const cases: { name: string; run: (opts: ClientOptions) => Promise<ClientResult> }[] = [
    { name: 'openssl s_client', run: opensslClient },
    { name: 'swaks', run: swaks },
    { name: 'python smtplib', run: pythonSmtplib },
    { name: 'curl', run: curlClient },
    { name: 'nodemailer', run: nodemailerClient },
  ];
  for (const { name, run } of cases) {
    test(`${name}: STARTTLS, TLSv1, CRAM-MD5, verified`, async (t) => {
      await withLegacyServer('starttls', async (port, seen) => {
        const result = await run(client(port, 'starttls', { tlsVersion: 'TLSv1', mechanism: 'CRAM-MD5', caFile: pki.caFile }));
        if (result.skipped) return t.skip('swaks is not installed');
        assert.ok(result.ok, result.transcript);
        assert.equal(result.code, 250);
        assert.equal(result.tlsVersion, 'TLSv1');
        assert.deepEqual(seen.protocols, ['TLSv1']);
        assert.deepEqual(seen.auths, [{ method: 'CRAM-MD5', ok: true }]);
        assert.deepEqual(seen.messages, [MESSAGE]);
      });
    });

    test(`${name}: implicit TLS, TLSv1.1, LOGIN, from 127.0.0.2`, async (t) => {
      await withLegacyServer('implicit', async (port, seen) => {
        const result = await run(client(port, 'implicit', { tlsVersion: 'TLSv1.1', mechanism: 'LOGIN', sourceAddress: '127.0.0.2' }));
        if (result.skipped) return t.skip('swaks is not installed');
        assert.ok(result.ok, result.transcript);
        assert.equal(result.tlsVersion, 'TLSv1.1');
        assert.deepEqual(seen.remoteAddresses, ['127.0.0.2']);
        assert.deepEqual(seen.protocols, ['TLSv1.1']);
        assert.deepEqual(seen.auths, [{ method: 'LOGIN', ok: true }]);
        assert.deepEqual(seen.messages, [MESSAGE]);
      });
    });

    test(`${name}: a wrong CRAM-MD5 password gets 535`, async (t) => {
      await withLegacyServer('implicit', async (port, seen) => {
        const result = await run(client(port, 'implicit', { tlsVersion: 'TLSv1', mechanism: 'CRAM-MD5', password: 'wrong' }));
        if (result.skipped) return t.skip('swaks is not installed');
        assert.equal(result.ok, false);
        assert.equal(result.code, 535, result.transcript);
        assert.deepEqual(seen.auths, [{ method: 'CRAM-MD5', ok: false }]);
        assert.equal(seen.messages.length, 0);
      });
    });
  }

  test('a client that gets no answer is killed at its time bound', async () => {
    const silent = net.createServer(() => {});
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
    const sockets = new Set<net.Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    try {
      const started = Date.now();
      const result = await opensslClient(client(port, 'implicit', { mechanism: 'PLAIN', timeoutMs: 1500 }));
      assert.equal(result.ok, false);
      assert.equal(result.timedOut, true);
      assert.ok(Date.now() - started < 5000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

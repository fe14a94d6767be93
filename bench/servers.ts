import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { SMTPServer } from 'smtp-server';
import { LIMITS_DEFAULTS } from '../src/config/schema.js';
import { BridgeServer } from '../src/inbound/connection.js';
import { ConnectionLimits } from '../src/inbound/connection-limits.js';
import { createLogger } from '../src/observe/logger.js';

/**
 * The two peers the benchmark runs in their own processes, so that the
 * bridge's CPU and memory can be read from /proc without them mixed in:
 *   upstream  — a provider: TLS 1.2+, AUTH PLAIN, records when each message arrived;
 *   sink      — the generator's ceiling: speaks TLS 1.0 + CRAM-MD5 like the bridge, accepts and forgets.
 * argv: ROLE KEY_FILE CERT_FILE. Prints the port on stdout; on SIGTERM prints arrival times as JSON.
 */
const [role, keyFile, certFile] = process.argv.slice(2);
const key = readFileSync(keyFile);
const cert = readFileSync(certFile);
const arrivals: Record<string, number> = {};
const now = () => performance.timeOrigin + performance.now();

function drain(stream: NodeJS.ReadableStream, onEnd: (head: string) => void): void {
  let head = '';
  stream.on('data', (chunk: Buffer) => {
    if (head.length < 2048) head += chunk.toString('latin1', 0, 2048);
  });
  stream.on('end', () => onEnd(head));
}

function acceptAnyone(auth: { username?: string }, _session: unknown, callback: (err: null, response: { user: string }) => void): void {
  callback(null, { user: auth.username ?? 'device' });
}

const server =
  role === 'upstream'
    ? new SMTPServer({
        secure: true,
        key,
        cert,
        minVersion: 'TLSv1.2',
        authMethods: ['PLAIN'],
        disableReverseLookup: true,
        logger: false,
        size: 64 * 1024 * 1024,
        onAuth: (_auth, _session, callback) => callback(null, { user: 'relay' }),
        onData(stream, _session, callback) {
          drain(stream, (head) => {
            const id = /^Message-ID: *(\S+)/im.exec(head)?.[1];
            if (id) arrivals[id] = now();
            callback();
          });
        },
      })
    : new BridgeServer(
        {
          key,
          cert,
          minVersion: 'TLSv1',
          ciphers: 'DEFAULT:@SECLEVEL=0',
          authMethods: ['CRAM-MD5'],
          allowInsecureAuth: true,
          disableReverseLookup: true,
          logger: false,
          onSecure: (_socket: TLSSocket, _session, callback) => callback(),
          onAuth: acceptAnyone,
          onData(stream, _session, callback) {
            drain(stream, () => callback());
          },
        },
        {
          greetingDelayMs: 0,
          allowCleartextAuth: () => false,
          authEquals: false,
          realm: 'bench',
          authenticate: acceptAnyone,
          allowsBareLfDot: () => false,
          limits: LIMITS_DEFAULTS,
          connections: new ConnectionLimits(LIMITS_DEFAULTS, createLogger('silent')),
          logger: createLogger('silent'),
        },
      );
server.on('error', () => {});
server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  console.log(typeof address === 'object' && address ? address.port : 0);
});
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify(arrivals) + '\n', () => process.exit(0));
});

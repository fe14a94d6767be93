import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { LineClient } from '../support/line-client.js';
import { startRelay, type Relay } from '../support/relay.js';

/**
 * Embedded Linux devices send mail with BusyBox `sendmail -H 'openssl s_client …'`,
 * which writes its first command without waiting for the greeting. Postfix's
 * smtpd answers such a client after the greeting; so must the bridge, on plain
 * and on implicit-TLS listeners alike.
 */

const FROM = 'camera@example.net';
const ROUNDS = 30;
let relay: Relay;

before(async () => {
  relay = await startRelay({
    devices: `  camera:
    auth: none
    networks: [127.0.0.1]
    senders: [${FROM}]
    upstream: provider
`,
  });
});

after(() => relay?.stop());

/** Connects, writes EHLO at once, and returns the first two replies. */
async function talkEarly(port: number, tls: boolean): Promise<(number | undefined)[]> {
  const client = await LineClient.connect({ port, tls });
  try {
    client.write('EHLO camera.lan\r\n');
    return [(await client.reply())?.code, (await client.reply())?.code];
  } finally {
    client.close();
  }
}

for (const [listener, tls] of [
  ['none', false],
  ['implicit', true],
] as const) {
  test(`an EHLO sent before the greeting is answered after it (${listener} listener, ${ROUNDS} sessions)`, async () => {
    const port = relay.bridge.ports[listener]!;
    for (let i = 0; i < ROUNDS; i++) assert.deepEqual(await talkEarly(port, tls), [220, 250], `session ${i + 1}`);
    assert.ok(
      relay.bridge.logs.some(
        (line) => line.level === 'debug' && line.msg === 'early talker: command before the greeting, answered after it',
      ),
    );
  });
}

test('BusyBox sendmail -H "openssl s_client": the whole session written up front over implicit TLS is delivered', async () => {
  const id = `<busybox-${process.pid}@camera.lan>`;
  const session = [
    'EHLO camera.lan',
    `MAIL FROM:<${FROM}>`,
    'RCPT TO:<owner@example.com>',
    'DATA',
    `Message-ID: ${id}`,
    'Subject: motion detected',
    '',
    'front door',
    '.',
    'QUIT',
    '',
  ].join('\r\n');
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${relay.bridge.ports.implicit}`, '-quiet', '-nocommands'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let output = '';
  child.stdout.setEncoding('latin1').on('data', (chunk: string) => (output += chunk));
  child.stdin.end(session);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(killer);
  assert.match(output, /^220 /m, output);
  assert.match(output, /^221 /m, output);
  assert.doesNotMatch(output, /too soon/i, output);
  assert.equal(code, 0, output);
  const [message] = await relay.provider.waitForMessages(1, 10_000);
  assert.ok(message.raw.includes(id));
});

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { captureYaml, SENSOR_DEVICE } from '../support/capture-config.js';
import { LineClient } from '../support/line-client.js';
import { nodemailerClient } from '../support/nodemailer-client.js';
import { waitUntil } from '../support/wait.js';
import { freePort } from '../support/ports.js';
import { spawnBridge } from '../support/process.js';

/**
 * max_connections and max_connections_per_ip, met the way a flood meets them:
 * many idle sockets at once, from one address and from many (any 127/8
 * source address works on Linux). Each refusal is a 421 4.7.0; each limit
 * is logged once however many it turns away.
 */

const PER_IP = 5;
const TOTAL = 12;
let bridge: TestBridge;

before(async () => {
  bridge = await startTestBridge({
    yaml: captureYaml(SENSOR_DEVICE, `limits: { max_connections: ${TOTAL}, max_connections_per_ip: ${PER_IP} }\n`),
  });
});

after(() => bridge?.stop());

async function open(localAddress: string, count: number, tls = false): Promise<LineClient[]> {
  const port = tls ? bridge.ports.implicit! : bridge.ports.none!;
  return Promise.all(Array.from({ length: count }, () => LineClient.connect({ port, localAddress, tls })));
}

/** The first reply of each client: the greeting, a 421, or null when it was closed without a word. */
const firstReplies = (clients: LineClient[]) => Promise.all(clients.map((client) => client.reply(5000)));

function closeAll(...groups: LineClient[][]): void {
  for (const client of groups.flat()) client.close();
}

/** A probe client closed: lets the bridge see it go before the next test counts from zero. */
async function settle(): Promise<void> {
  await sleep(300);
}

const logged = (msg: string) => bridge.logs.filter((line) => line.msg === msg);

/** Waits for the `n`th time a limit cleared: the bridge has seen enough of a flood's sockets close. */
const cleared = (limit: string, n: number) =>
  waitUntil(`${limit} to clear (${n})`, () => logged('connections accepted again').filter((line) => line.limit === limit)[n - 1], 20_000);

test('one address gets max_connections_per_ip sessions; the next ones hear 421 4.7.0, and other addresses are still served', async () => {
  const flood = await open('127.0.1.1', PER_IP + 10);
  const other = await open('127.0.1.2', 1);
  try {
    const replies = await firstReplies(flood);
    assert.equal(replies.filter((reply) => reply?.code === 220).length, PER_IP);
    const refused = replies.filter((reply) => reply?.code === 421);
    assert.equal(refused.length, 10);
    assert.match(refused[0]!.text, /^4\.7\.0 .*Too many connections from your address/);
    assert.equal((await other[0].reply())?.code, 220);
    const warnings = logged('connections refused: too many from one client');
    assert.equal(warnings.length, 1, 'one log line for the condition, not one per refusal');
    assert.deepEqual([warnings[0].level, warnings[0].limit, warnings[0].client_ip], ['warn', 'max_connections_per_ip', '127.0.1.1']);
  } finally {
    closeAll(flood, other);
  }
  assert.equal((await cleared('max_connections_per_ip', 1)).refused, 10);
  const again = await open('127.0.1.1', 1);
  assert.equal((await again[0].reply())?.code, 220, 'room again once the address closed its sessions');
  closeAll(again);
  await settle();
});

test('sessions that went through STARTTLS give their place back: three times max_connections_per_ip of them in a row, one address, all served', async () => {
  for (let i = 0; i < 3 * PER_IP; i++) {
    const result = await nodemailerClient({
      host: '127.0.0.1',
      port: bridge.ports.starttls!,
      security: 'starttls',
      sourceAddress: '127.0.0.1',
      from: 'sensor@example.net',
      to: ['owner@example.com'],
      message: `Subject: reading ${i}\r\n\r\nok\r\n`,
    });
    assert.equal(result.code, 250, `session ${i + 1}: ${result.transcript.split('\n').slice(-2).join(' | ')}`);
  }
  await settle();
});

test('many addresses together get max_connections sessions; the rest hear 421 4.7.0, TLS clients are closed without a handshake', async () => {
  const groups = await Promise.all(['127.0.2.1', '127.0.2.2', '127.0.2.3'].map((address) => open(address, 4)));
  const greeted = (await firstReplies(groups.flat())).filter((reply) => reply?.code === 220).length;
  const late = await open('127.0.2.9', 3);
  try {
    assert.equal(greeted, TOTAL);
    const lateReplies = await firstReplies(late);
    assert.deepEqual(
      lateReplies.map((reply) => reply?.code),
      [421, 421, 421],
    );
    assert.match(lateReplies[0]!.text, /^4\.7\.0 .*Too many connections, try again later/);
    // An implicit-TLS client is refused before its handshake: a 421 in cleartext would be a TLS protocol error to it.
    await assert.rejects(open('127.0.2.10', 1, true));
    const warnings = logged('connections refused: too many open');
    assert.equal(warnings.length, 1);
    assert.deepEqual([warnings[0].limit, warnings[0].max], ['max_connections', TOTAL]);
  } finally {
    closeAll(...groups, late);
  }
  assert.equal((await cleared('max_connections', 1)).refused, 4);
  const again = await open('127.0.2.9', 1);
  assert.equal((await again[0].reply())?.code, 220);
  closeAll(again);
  await settle();
});

test('a thousand idle connections from fifty addresses hold at most max_connections: the device is told 421, and served once they go', async () => {
  const addresses = Array.from({ length: 50 }, (_, i) => `127.0.3.${i + 1}`);
  const flood = (await Promise.all(addresses.map((address) => open(address, 20)))).flat();
  try {
    await firstReplies(flood);
    const device = await open('127.0.4.1', 1);
    // The device is turned away while the flood holds every slot, and says so; it is never left hanging.
    const reply = await device[0].reply(5000);
    assert.equal(reply?.code, 421);
    closeAll(device);
  } finally {
    closeAll(flood);
  }
  await cleared('max_connections', 2);
  const device = await open('127.0.4.1', 1);
  assert.equal((await device[0].reply())?.code, 220);
  assert.equal((await device[0].command('EHLO device.lan'))?.code, 250);
  closeAll(device);
});

test('an open-file limit too low for max_connections is warned about at start: past it the system drops connections unseen', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-nofile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'smtp-bridge.yaml');
  const port = await freePort();
  await writeFile(
    file,
    `listen: [{ port: ${port}, tls: none, address: 127.0.0.1 }]
tls: { cert_file: bridge.crt, key_file: bridge.key }
limits: { max_connections: 500 }
upstreams: { capture: { type: directory, path: captured } }
devices: { sensor: { auth: none, networks: [127.0.0.1], senders: [sensor@example.net], upstream: capture } }
`,
  );
  const bridge = await spawnBridge(file, 1, 30_000, undefined, 256);
  try {
    const warning = await bridge.waitForLog((line) => /open-file limit/.test(line.msg));
    assert.equal(warning.level, 'warn');
    assert.deepEqual([warning.open_files, warning.needed, warning.max_connections], [256, 564, 500]);
  } finally {
    await bridge.kill('SIGTERM');
  }
});

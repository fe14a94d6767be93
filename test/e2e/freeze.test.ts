import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { logsAbout as logsIn, startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import { runCli, type CliResult } from '../support/cli.js';
import type { ClientResult } from '../support/client-options.js';
import { deviceYaml, submitAs } from '../support/configured-device.js';
import { makePki, type Pki } from '../support/pki.js';
import { startDownPort, startUpstream, type Upstream } from '../support/upstream.js';
import { waitUntil } from '../support/wait.js';

/**
 * Field note 2, the pace: a leaked password can send only at its device's
 * usual pace, and pushing past that freezes the device, holds its queue and
 * tells the operator at once (webhook and command), until the operator
 * unfreezes it.
 */

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
  bridge = await startTestBridge({
    yaml: `delivery: { sync_wait: 2s, retry_initial: 500ms, retry_max: 1s }
alert:
  webhook: http://127.0.0.1:${(webhook.address() as AddressInfo).port}/frozen
  command: 'printf %s "$SMTP_BRIDGE_DEVICE" > ${alertDir}/device; cat > ${alertDir}/event.json'
upstreams:
  capture: { type: directory, path: captured }
  flaky: { host: 127.0.0.1, port: ${flaky.port}, tls: implicit, ca_file: ${pki.caFile}, auth: { user: relay@example.net, password: upstream-secret } }
  down: { host: 127.0.0.1, port: ${downPort}, tls: implicit, connect_timeout: 1s, auth: { user: relay@example.net, password: upstream-secret } }
devices:
${deviceYaml('doorphone')}${deviceYaml('budgeted', 'limits: { messages: 2/10s }\nfreeze_after: false')}${deviceYaml('spammer', 'limits: { messages: 2/1h }\nfreeze_after: 4/1h', 'flaky')}${deviceYaml('cannon', 'limits: { messages: 1/1h }\nfreeze_after: 2/1h', 'down')}`,
  });
});

after(async () => {
  await bridge?.stop();
  await flaky?.close();
  await new Promise((resolve) => webhook?.close(resolve));
  await rm(pkiDir, { recursive: true, force: true });
  await rm(alertDir, { recursive: true, force: true });
});

const send = (device: string): Promise<ClientResult> => submitAs(bridge, device);
const logsAbout = (msg: string, fields: Record<string, unknown>): LogLine[] => logsIn(bridge.logs, msg, fields);
const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '-c', bridge.file]);

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

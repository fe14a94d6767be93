import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pythonSmtplib } from '../support/python-client.js';
import { makePki, type Pki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { spawnBridge } from '../support/process.js';
import { writeServeConfig } from '../support/serve-config.js';
import { startUpstream } from '../support/upstream.js';

/**
 * SIGTERM while a delivery hangs on a provider that stopped answering in the
 * middle of DATA: the bridge must be gone shortly after delivery.shutdown_wait,
 * the message still in its spool, and delivered exactly once after a restart.
 */

const SHUTDOWN_WAIT_MS = 2000;
/** Exit, child-process teardown and scheduling on a busy 2-core machine (the bug it catches held on for minutes). */
const MARGIN_MS = 5000;
const FROM = 'nas@example.net';
let dir: string;
let pki: Pki;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-shutdown-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

function writeConfig(name: string, listenPort: number, upstreamPort: number): Promise<string> {
  const setup = { dir, caFile: pki.caFile, device: 'nas', from: FROM };
  const delivery = `sync_wait: 300, retry_initial: 200, retry_max: 500, shutdown_wait: ${SHUTDOWN_WAIT_MS}`;
  return writeServeConfig(setup, name, { listen: listenPort, upstream: upstreamPort }, { spoolDir: 'spool', delivery });
}

const queued = async () => (await readdir(join(dir, 'spool', 'queue'))).filter((file) => file.endsWith('.msg'));

test('SIGTERM with a provider silent mid-DATA: exit within shutdown_wait, message kept, delivered once after restart', async () => {
  let stalled!: () => void;
  const stalledDelivery = new Promise<void>((resolve) => (stalled = resolve));
  const silent = await startUpstream({ pki, mode: 'implicit', stallData: () => stalled() });
  const listenPort = await freePort();
  const bridge = await spawnBridge(await writeConfig('silent', listenPort, silent.port), 1);
  const id = `<shutdown-${process.pid}@nas.lan>`;
  try {
    // Large enough that the bridge is still writing it when the provider stops reading.
    const body = `Message-ID: ${id}\r\nSubject: backup report\r\n\r\n${'all files copied\r\n'.repeat(200_000)}`;
    const sent = await pythonSmtplib({
      host: '127.0.0.1',
      port: listenPort,
      security: 'none',
      from: FROM,
      to: ['owner@example.com'],
      message: body,
    });
    assert.equal(sent.code, 250, sent.transcript);
    await stalledDelivery;
    await sleep(300);
    const signalled = Date.now();
    bridge.child.kill('SIGTERM');
    const exited = await Promise.race([
      new Promise<true>((resolve) => bridge.child.once('exit', () => resolve(true))),
      sleep(SHUTDOWN_WAIT_MS + MARGIN_MS).then(() => false as const),
    ]);
    const took = Date.now() - signalled;
    assert.ok(exited, `still running ${took} ms after SIGTERM (shutdown_wait ${SHUTDOWN_WAIT_MS} ms)`);
    assert.ok(bridge.logs.some((line) => line.msg === 'stopped'));
    const deferred = bridge.logs.find((line) => line.msg === 'deferred');
    assert.match(String(deferred?.response), /cut off: the bridge is shutting down/, 'the cut-off attempt is recorded');
  } finally {
    await bridge.kill('SIGKILL');
    await silent.close();
  }
  assert.equal((await queued()).length, 1, 'the message is still in the spool');

  const provider = await startUpstream({ pki, mode: 'implicit' });
  const restarted = await spawnBridge(await writeConfig('restarted', listenPort, provider.port), 1);
  try {
    const [message] = await provider.waitForMessages(1, 15_000);
    assert.ok(message.raw.includes(id));
    await sleep(1500);
    assert.equal(provider.messages.length, 1, 'delivered exactly once');
    assert.deepEqual(await queued(), []);
  } finally {
    await restarted.kill('SIGTERM');
    await provider.close();
  }
});

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
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
import { openDataSession } from '../support/raw-client.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { waitUntil } from '../support/wait.js';

/**
 * The bridge as a separate process, killed with SIGKILL at the worst moments.
 * Whatever got 250 must arrive once the bridge is back.
 */

const FROM = 'sensor@example.net';
let dir: string;
let pki: Pki;
let counter = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-crash-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

/** A config in its own directory; the spool lives there and survives restarts. */
function writeConfig(name: string, listenPort: number, upstreamPort: number): Promise<string> {
  const setup = { dir, caFile: pki.caFile, device: 'sensor', from: FROM };
  const delivery = 'sync_wait: 300, retry_initial: 150, retry_max: 500, shutdown_wait: 1s';
  return writeServeConfig(setup, name, { listen: listenPort, upstream: upstreamPort }, { spoolDir: `spool-${name}`, delivery });
}

function send(port: number) {
  const id = `<crash-${process.pid}-${++counter}@test>`;
  return pythonSmtplib({
    host: '127.0.0.1',
    port,
    security: 'none',
    from: FROM,
    to: ['owner@example.com'],
    message: `Message-ID: ${id}\r\nSubject: ring\r\n\r\nding dong\r\n`,
  }).then((result) => ({ id, result }));
}

const queued = (name: string) => readdirSync(join(dir, `spool-${name}`, 'queue')).filter((f) => f.endsWith('.msg'));

/** Starts the bridge again on the same spool and waits for the provider to get the message. */
async function restartAndExpect(config: string, provider: Upstream, messageId: string): Promise<void> {
  const bridge = await spawnBridge(config, 1);
  try {
    const [message] = await provider.waitForMessages(1, 10_000);
    assert.ok(message.raw.includes(messageId));
  } finally {
    await bridge.kill('SIGTERM');
  }
}

async function scenario(name: string, body: (ctx: { listenPort: number; upstreamPort: number; config: string }) => Promise<void>) {
  const listenPort = await freePort();
  const upstreamPort = await freePort();
  await body({ listenPort, upstreamPort, config: await writeConfig(name, listenPort, upstreamPort) });
}

test('restart with a non-empty spool: every queued message is delivered', async () => {
  await scenario('restart', async ({ listenPort, upstreamPort, config }) => {
    const first = await spawnBridge(config, 1);
    // The first start of this file's bridges creates their listener certificate; the restart reuses it.
    assert.equal(first.logs.filter((l) => l.msg === 'created a self-signed certificate').length, 1);
    const sent = [await send(listenPort), await send(listenPort)];
    for (const { result } of sent) assert.match(result.transcript, /250 2\.0\.0 Queued as/);
    await first.kill('SIGTERM');
    assert.equal(first.child.exitCode, 0, first.stderr);
    assert.equal(queued('restart').length, 2);
    const provider = await startUpstream({ pki, mode: 'implicit', port: upstreamPort });
    const second = await spawnBridge(config, 1);
    try {
      const resumed = await second.waitForLog((l) => l.msg === 'resuming queued messages');
      assert.equal(second.logs.filter((l) => l.msg === 'created a self-signed certificate').length, 0);
      assert.equal(resumed.messages, 2);
      const messages = await provider.waitForMessages(2, 10_000);
      for (const { id } of sent) assert.equal(messages.filter((m) => m.raw.includes(id)).length, 1);
    } finally {
      await second.kill('SIGTERM');
      await provider.close();
    }
  });
});

test('kill -9 during DATA: nothing was promised, nothing is delivered, no debris', async () => {
  await scenario('during-data', async ({ listenPort, upstreamPort, config }) => {
    const provider = await startUpstream({ pki, mode: 'implicit', port: upstreamPort });
    try {
      const first = await spawnBridge(config, 1);
      const socket = await openDataSession(listenPort, FROM);
      socket.write('Subject: cut short\r\n\r\nthe first half of a message');
      await sleep(100);
      await first.kill('SIGKILL');
      socket.destroy();
      const second = await spawnBridge(config, 1);
      try {
        await sleep(500);
        assert.equal(provider.messages.length, 0);
        assert.deepEqual(readdirSync(join(dir, 'spool-during-data', 'tmp')), []);
        assert.deepEqual(queued('during-data'), []);
      } finally {
        await second.kill('SIGTERM');
      }
    } finally {
      await provider.close();
    }
  });
});

test('kill -9 after 250: the queued message is delivered after the restart', async () => {
  await scenario('after-250', async ({ listenPort, upstreamPort, config }) => {
    const first = await spawnBridge(config, 1);
    const { id, result } = await send(listenPort);
    assert.match(result.transcript, /250 2\.0\.0 Queued as/);
    await first.kill('SIGKILL');
    const provider = await startUpstream({ pki, mode: 'implicit', port: upstreamPort });
    try {
      await restartAndExpect(config, provider, id);
    } finally {
      await provider.close();
    }
  });
});

test('kill -9 during delivery: the message is delivered after the restart (at least once)', async () => {
  await scenario('during-delivery', async ({ listenPort, upstreamPort, config }) => {
    let holding = true;
    let arrivals = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The provider has the whole message but has not answered when the bridge dies; that copy is never acknowledged.
    const onData = async () => {
      if (!holding) return undefined;
      arrivals += 1;
      await released;
      return { code: 451, message: '4.4.2 Connection lost' };
    };
    let provider: Upstream | undefined = await startUpstream({ pki, mode: 'implicit', port: upstreamPort, onData });
    try {
      const first = await spawnBridge(config, 1);
      const sending = send(listenPort);
      assert.equal(await waitUntil('the provider to get the whole message', () => arrivals), 1);
      // The provider is still chewing on it when sync_wait runs out: the device hears 250 "queued".
      const { id, result } = await sending;
      assert.match(result.transcript, /250 2\.0\.0 Queued as/);
      await first.kill('SIGKILL');
      holding = false;
      release();
      await provider.close();
      provider = await startUpstream({ pki, mode: 'implicit', port: upstreamPort });
      assert.equal(queued('during-delivery').length, 1);
      await restartAndExpect(config, provider, id);
    } finally {
      await provider?.close();
    }
  });
});

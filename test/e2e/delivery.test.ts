import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { pythonSmtplib } from '../support/python-client.js';
import { dropMidData, openDataSession } from '../support/raw-client.js';
import { makePki, type Pki } from '../support/pki.js';
import { providerYaml } from '../support/provider-yaml.js';
import { freePort } from '../support/ports.js';
import { startUpstream, type SmtpReply, type Upstream, type UpstreamOptions } from '../support/upstream.js';
import { waitUntil } from '../support/wait.js';

let pkiDir: string;
let pki: Pki;
before(async () => {
  pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  pki = await makePki(pkiDir);
});
after(() => rm(pkiDir, { recursive: true, force: true }));

const FROM = 'sensor@example.net';
let counter = 0;
const message = () => `Subject: reading ${++counter}\r\nMessage-ID: <delivery-${process.pid}-${counter}@test>\r\n\r\ntemperature ok\r\n`;

/** A bridge with one device (no AUTH, from 127.0.0.1) whose mail goes to a provider on `upstreamPort`. */
function bridgeFor(upstreamPort: number, delivery: string, concurrency = 2): Promise<TestBridge> {
  return startTestBridge({
    yaml: `delivery: { ${delivery} }
upstreams:
${providerYaml({ name: 'provider', port: upstreamPort, caFile: pki.caFile, extra: [`concurrency: ${concurrency}`] })}devices:
  sensor:
    auth: none
    networks: [127.0.0.1]
    senders: [${FROM}]
    upstream: provider
`,
  });
}

const FAST_RETRY = 'sync_wait: 2s, retry_initial: 150, retry_max: 600, shutdown_wait: 2s';

function send(bridge: TestBridge, to: string[] = ['owner@example.com'], body = message()) {
  return pythonSmtplib({ host: '127.0.0.1', port: bridge.ports.none!, security: 'none', from: FROM, to, message: body });
}

const queueIdOf = (transcript: string) => /Queued as ([0-9A-Z]+)/.exec(transcript)?.[1] ?? assert.fail(`not queued: ${transcript}`);
const spoolFiles = (bridge: TestBridge, area: string) => readdirSync(join(bridge.dir, 'spool', area));

async function withProvider(options: Partial<UpstreamOptions>, body: (upstream: Upstream) => Promise<void>): Promise<void> {
  const upstream = await startUpstream({ pki, mode: 'implicit', ...options });
  try {
    await body(upstream);
  } finally {
    await upstream.close();
  }
}

test('provider down for a while, then up: delivered once, after retries', async () => {
  const port = await freePort();
  const bridge = await bridgeFor(port, FAST_RETRY);
  try {
    const result = await send(bridge);
    assert.equal(result.code, 250, result.transcript);
    const id = queueIdOf(result.transcript);
    const deferred = await bridge.waitForLog((l) => l.msg === 'deferred' && l.queue_id === id && Number(l.attempt) >= 2);
    assert.match(String(deferred.response), /ECONNREFUSED/);
    await withProvider({ port }, async (provider) => {
      const [received] = await provider.waitForMessages(1, 8000);
      assert.deepEqual(received.envelope, { mailFrom: FROM, rcptTo: ['owner@example.com'] });
      const delivered = await bridge.waitForLog((l) => l.msg === 'delivered' && l.queue_id === id);
      assert.ok(Number(delivered.attempt) >= 3);
      await sleep(800);
      assert.equal(provider.messages.length, 1);
      assert.deepEqual(spoolFiles(bridge, 'queue'), []);
    });
  } finally {
    await bridge.stop();
  }
});

test('provider 4xx, then 250: the device hears "queued", the message goes out on the retry', async () => {
  let calls = 0;
  const onData = (): SmtpReply | undefined => (++calls === 1 ? { code: 451, message: '4.3.0 Busy, try later' } : undefined);
  await withProvider({ onData }, async (provider) => {
    const bridge = await bridgeFor(provider.port, FAST_RETRY);
    try {
      const result = await send(bridge);
      assert.equal(result.code, 250, result.transcript);
      const id = queueIdOf(result.transcript);
      const [received] = await provider.waitForMessages(1, 8000);
      assert.match(received.raw.toString(), /^Subject: reading \d+\r$/m);
      const delivered = await bridge.waitForLog((l) => l.msg === 'delivered' && l.queue_id === id);
      assert.equal(delivered.attempt, 2);
      assert.equal(calls, 2);
    } finally {
      await bridge.stop();
    }
  });
});

test('expiry: a message undeliverable for longer than max_age moves to the failed area', async () => {
  const bridge = await bridgeFor(await freePort(), 'sync_wait: 2s, retry_initial: 100, retry_max: 200, max_age: 700');
  try {
    const result = await send(bridge);
    const id = queueIdOf(result.transcript);
    const expired = await bridge.waitForLog((l) => l.msg === 'expired' && l.queue_id === id);
    assert.equal(expired.level, 'error');
    // The attempt is over once its lock on the queue file is gone, which is after the move to failed/.
    await bridge.waitForLog((l) => l.msg === 'attempt finished' && l.queue_id === id && l.attempt === expired.attempt);
    assert.ok(spoolFiles(bridge, 'failed').includes(`${id}.msg`), 'the expired message is not in the failed area');
    const state = JSON.parse(await readFile(join(bridge.dir, 'spool', 'failed', `${id}.state`), 'utf8'));
    assert.match(state.reason, /^expired after \d+ attempts: .*ECONNREFUSED/);
    assert.deepEqual(spoolFiles(bridge, 'queue'), []);
  } finally {
    await bridge.stop();
  }
});

test('partial recipient failure: delivered recipients are never sent again, the rest continue', async () => {
  let laterTries = 0;
  const onRcpt = (address: string): SmtpReply | undefined => {
    if (address === 'never@example.org') return { code: 550, message: '5.1.1 No such user' };
    if (address === 'later@example.org' && ++laterTries === 1) return { code: 450, message: '4.2.1 Mailbox busy' };
    return undefined;
  };
  await withProvider({ onRcpt }, async (provider) => {
    const bridge = await bridgeFor(provider.port, FAST_RETRY);
    try {
      const result = await send(bridge, ['now@example.org', 'later@example.org', 'never@example.org']);
      assert.equal(result.code, 250, result.transcript);
      const id = queueIdOf(result.transcript);
      const [first, second] = await provider.waitForMessages(2, 8000);
      assert.deepEqual(first.envelope.rcptTo, ['now@example.org']);
      assert.deepEqual(second.envelope.rcptTo, ['later@example.org']);
      const bounced = await bridge.waitForLog((l) => l.msg === 'bounced' && l.queue_id === id);
      assert.equal(bounced.to, 'never@example.org');
      await waitUntil('the message in the failed area', () => spoolFiles(bridge, 'failed').includes(`${id}.msg`));
      const state = JSON.parse(await readFile(join(bridge.dir, 'spool', 'failed', `${id}.state`), 'utf8'));
      assert.deepEqual(state.delivered, ['now@example.org', 'later@example.org']);
      assert.deepEqual(
        state.refused.map((r: { address: string }) => r.address),
        ['never@example.org'],
      );
      await sleep(500);
      assert.equal(provider.messages.length, 2);
    } finally {
      await bridge.stop();
    }
  });
});

test('a provider slower than sync_wait: the device hears "queued" at once, the message is delivered once', async () => {
  // The provider holds DATA until the device has had its answer: "at once" does not depend on how busy the machine is.
  let release!: () => void;
  const held = new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
  const onData = () => held;
  await withProvider({ onData }, async (provider) => {
    const bridge = await bridgeFor(provider.port, 'sync_wait: 200, retry_initial: 1h');
    try {
      const result = await send(bridge);
      assert.equal(result.code, 250, result.transcript);
      const id = queueIdOf(result.transcript);
      assert.match(result.transcript, /Queued as/);
      assert.equal(provider.messages.length, 0, "the provider had answered the device's message already");
      release();
      const [received] = await provider.waitForMessages(1, 5000);
      assert.equal(received.envelope.mailFrom, FROM);
      const delivered = await bridge.waitForLog((l) => l.msg === 'delivered' && l.queue_id === id);
      assert.equal(delivered.attempt, 1);
      await sleep(300);
      assert.equal(provider.messages.length, 1);
    } finally {
      release();
      await bridge.stop();
    }
  });
});

test('connections are reused, and a connection the provider dropped is replaced without losing the message', async () => {
  await withProvider({}, async (provider) => {
    const bridge = await bridgeFor(provider.port, FAST_RETRY, 1);
    try {
      for (let i = 0; i < 3; i++) assert.equal((await send(bridge)).code, 250);
      assert.equal(provider.connections, 1, 'three consecutive messages should share one upstream connection');
      provider.dropSessions();
      await sleep(100);
      const result = await send(bridge);
      assert.match(result.transcript, /Relayed: 250/);
      assert.equal(provider.messages.length, 4);
      assert.equal(provider.connections, 2);
    } finally {
      await bridge.stop();
    }
  });
});

test('a device that drops mid-DATA leaves nothing behind, and the next message goes through', async () => {
  await withProvider({}, async (provider) => {
    const bridge = await bridgeFor(provider.port, FAST_RETRY);
    try {
      await dropMidData(bridge.ports.none!, FROM);
      await sleep(200);
      assert.deepEqual(spoolFiles(bridge, 'tmp'), []);
      assert.deepEqual(spoolFiles(bridge, 'queue'), []);
      assert.equal((await send(bridge)).code, 250);
      assert.equal(provider.messages.length, 1);
    } finally {
      await bridge.stop();
    }
  });
});

test('a bridge shutting down answers 421 4.3.2 to a session that is still open', async () => {
  const bridge = await bridgeFor(await freePort(), FAST_RETRY);
  const socket = await openDataSession(bridge.ports.none!, FROM);
  const replies: string[] = [];
  socket.on('data', (chunk: Buffer) => replies.push(chunk.toString()));
  socket.write('Subject: late\r\n\r\nstill typing\r\n.\r\n');
  const stopping = bridge.stop();
  await sleep(100);
  socket.write('MAIL FROM:<sensor@example.net>\r\n');
  await sleep(200);
  socket.destroy();
  await stopping;
  assert.match(replies.join(''), /^421 4\.3\.2 Server shutting down\r$/m);
});

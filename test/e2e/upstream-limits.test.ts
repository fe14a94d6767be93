import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { nodemailerClient } from '../support/nodemailer-client.js';
import { makePki } from '../support/pki.js';
import { providerYaml } from '../support/provider-yaml.js';
import { startUpstream, type Upstream, type UpstreamOptions } from '../support/upstream.js';

/*
 * A provider's own limits, met by the bridge without losing or doubling a
 * message: a real provider on loopback that turns sessions beyond a number
 * away with a 421, and one that refuses messages over a rate.
 */

const FROM = 'sensor@example.net';

async function relayTo(t: TestContext, provider: Omit<UpstreamOptions, 'pki' | 'mode'>, upstreamKeys: string[]) {
  const pkiDir = await mkdtemp(join(tmpdir(), 'smtp-bridge-pki-'));
  t.after(() => rm(pkiDir, { recursive: true, force: true }));
  const pki = await makePki(pkiDir);
  const upstream = await startUpstream({ pki, mode: 'implicit', ...provider });
  t.after(() => upstream.close());
  const bridge = await startTestBridge({
    yaml: `delivery: { sync_wait: 5s, retry_initial: 30s, shutdown_wait: 2s }
upstreams:
${providerYaml({ name: 'provider', port: upstream.port, caFile: pki.caFile, extra: upstreamKeys })}devices:
  sensor:
    auth: none
    networks: [127.0.0.1]
    senders: [${FROM}]
    upstream: provider
`,
  });
  t.after(() => bridge.stop());
  return { upstream, bridge };
}

/** `n` devices sending one message each, all at once; resolves with each one's reply code. */
function burst(bridge: TestBridge, tag: string, n: number): Promise<(number | null)[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      nodemailerClient({
        host: '127.0.0.1',
        port: bridge.ports.none!,
        security: 'none',
        from: FROM,
        to: ['owner@example.com'],
        message: `Subject: ${tag} ${i}\r\nMessage-ID: <${tag}-${i}@test>\r\n\r\nreading ${i}\r\n`,
        timeoutMs: 30_000,
      }).then((result) => result.code),
    ),
  );
}

function messageIds(upstream: Upstream): string[] {
  return upstream.messages.map((m) => /^Message-ID: (\S+)/im.exec(m.raw.toString())![1]).sort();
}

function expectedIds(tag: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `<${tag}-${i}@test>`).sort();
}

async function spoolEmpties(bridge: TestBridge): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (readdirSync(join(bridge.dir, 'spool', 'queue')).length > 0) {
    assert.ok(Date.now() < deadline, 'the spool did not empty');
    await sleep(50);
  }
}

test('a provider that serves 3 sessions: the bridge settles at 3 or fewer, and every message arrives exactly once', async (t) => {
  const { upstream, bridge } = await relayTo(t, { maxSessions: 3 }, []);
  const codes = await burst(bridge, 'sessions', 30);
  assert.deepEqual(codes, Array(30).fill(250), 'every device heard 250');
  await upstream.waitForMessages(30, 30_000);
  await spoolEmpties(bridge);
  await sleep(300);
  assert.deepEqual(messageIds(upstream), expectedIds('sessions', 30), 'each message arrived once');

  const changes = bridge.logs.filter((line) => line.msg === 'upstream concurrency lowered' || line.msg === 'upstream concurrency raised');
  const lowered = changes.filter((line) => line.msg === 'upstream concurrency lowered');
  assert.ok(lowered.length >= 1, 'the 421 lowered the concurrency');
  assert.equal(lowered[0].response, 'CONN: 421 4.7.0 Too many connections');
  assert.ok(Number(changes.at(-1)!.concurrency) <= 3, `settled at ${String(changes.at(-1)!.concurrency)}`);
  // Sessions opened before the first 421 came back may be refused too; after it, none.
  const refused = upstream.refusedSessions;
  assert.ok(refused >= 1 && refused < 10, `${refused} sessions refused`);
  assert.deepEqual(
    bridge.logs.filter((line) => line.msg === 'deferred'),
    [],
    'a refused session defers nothing',
  );

  // Remembered: the next burst stays within the provider's limit from the start.
  assert.deepEqual(await burst(bridge, 'again', 20), Array(20).fill(250));
  await upstream.waitForMessages(50, 30_000);
  await spoolEmpties(bridge);
  assert.deepEqual(messageIds(upstream), [...expectedIds('sessions', 30), ...expectedIds('again', 20)].sort());
  assert.equal(upstream.refusedSessions, refused, 'sessions refused in the second burst');
});

test('rate 4/5s against a provider that refuses a fifth message within 5 s: devices are answered at once, the provider refuses nothing', async (t) => {
  const { upstream, bridge } = await relayTo(t, { rateLimit: { count: 4, windowMs: 5000 } }, ['rate: 4/5s']);
  const started = Date.now();
  const codes = await burst(bridge, 'paced', 8);
  assert.deepEqual(codes, Array(8).fill(250), 'every device heard 250');
  assert.ok(upstream.messages.length <= 4, 'a device waited for the rate: its reply came after a fifth message went out');

  await upstream.waitForMessages(8, 30_000);
  await spoolEmpties(bridge);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 5000, `8 messages at 4 per 5 s took only ${elapsed} ms`);
  assert.deepEqual(messageIds(upstream), expectedIds('paced', 8), 'each message arrived once');
  assert.equal(upstream.refusedOverRate, 0, 'the provider refused messages over its rate');
  assert.deepEqual(
    bridge.logs.filter((line) => line.msg === 'deferred'),
    [],
  );
  const reached = bridge.logs.find((line) => line.msg === 'upstream rate reached');
  assert.equal(reached?.rate, '4/5s');
});

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBridge, type LogLine, type TestBridge } from '../support/bridge.js';
import { waitUntil } from '../support/wait.js';
import { sendThrough } from '../support/send.js';
import { makePki, type Pki } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { runCli } from '../support/cli.js';
import { providerYaml } from '../support/provider-yaml.js';
import { startUpstream, type SmtpReply, type Upstream } from '../support/upstream.js';

/**
 * An upstream with a fallback: the next one is tried when the first cannot
 * take the message for now, never after it refused the message for good.
 */

let dir: string;
let pki: Pki;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-failover-'));
  pki = await makePki(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

const FROM = 'sensor@example.net';

async function withChain(
  primary: { port: number; password?: string },
  body: (ctx: { bridge: TestBridge; backup: Upstream }) => Promise<void>,
): Promise<void> {
  const backup = await startUpstream({ pki, mode: 'implicit' });
  try {
    const bridge = await startTestBridge({
      yaml: `delivery: { sync_wait: 5s, retry_initial: 1h, shutdown_wait: 2s }
upstreams:
${providerYaml({ name: 'primary', port: primary.port, caFile: pki.caFile, password: primary.password, extra: ['fallback: [backup]'] })}${providerYaml({ name: 'backup', port: backup.port, caFile: pki.caFile })}devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [${FROM}], upstream: primary }
`,
    });
    try {
      await body({ bridge, backup });
    } finally {
      await bridge.stop();
    }
  } finally {
    await backup.close();
  }
}

const send = (bridge: TestBridge) => sendThrough(bridge, FROM, 'failover');

const line = (bridge: TestBridge, msg: string): LogLine | undefined => bridge.logs.find((l) => l.msg === msg);

async function withPrimary(onData: () => SmtpReply | undefined, body: (primary: Upstream) => Promise<void>): Promise<void> {
  const primary = await startUpstream({ pki, mode: 'implicit', onData });
  try {
    await body(primary);
  } finally {
    await primary.close();
  }
}

test('primary refuses the connection: the fallback delivers at once, and the delivered line names it', async () => {
  await withChain({ port: await freePort() }, async ({ bridge, backup }) => {
    const result = await send(bridge);
    assert.equal(result.code, 250, result.transcript);
    assert.match(result.response ?? '', /Relayed: 250/);
    await backup.waitForMessages(1, 5000);
    const delivered = line(bridge, 'delivered');
    assert.equal(delivered?.upstream, 'primary');
    assert.equal(delivered?.via, 'backup');
  });
});

test('primary answers 421: the fallback delivers; primary keeps nothing', async () => {
  await withPrimary(
    () => ({ code: 421, message: '4.3.2 Service shutting down' }),
    async (primary) => {
      await withChain({ port: primary.port }, async ({ bridge, backup }) => {
        assert.equal((await send(bridge)).code, 250);
        await backup.waitForMessages(1, 5000);
        assert.equal(primary.messages.length, 0);
        assert.equal(line(bridge, 'delivered')?.via, 'backup');
      });
    },
  );
});

test('primary answers 550: bounced, the fallback is never asked', async () => {
  await withPrimary(
    () => ({ code: 550, message: '5.7.1 Message refused' }),
    async (primary) => {
      await withChain({ port: primary.port }, async ({ bridge, backup }) => {
        const result = await send(bridge);
        assert.equal(result.code, 554, result.transcript);
        assert.match(result.response ?? '', /refused the message: primary: 550 5\.7\.1/);
        await sleep(300);
        assert.equal(backup.connections, 0, 'the fallback was contacted after a 5xx');
        assert.equal(line(bridge, 'bounced')?.to, 'owner@example.com');
      });
    },
  );
});

test('every upstream fails AUTH: deferred with what each answered and a hint, and the queue tools say the same', async () => {
  await withPrimary(
    () => undefined,
    async (primary) => {
      const backup = await startUpstream({ pki, mode: 'implicit', users: { 'relay@example.net': 'other' } });
      try {
        const bridge = await startTestBridge({
          yaml: `delivery: { sync_wait: 5s, retry_initial: 1h, shutdown_wait: 2s }
upstreams:
${providerYaml({ name: 'primary', port: primary.port, caFile: pki.caFile, password: 'wrong', extra: ['fallback: [backup]'] })}${providerYaml({ name: 'backup', port: backup.port, caFile: pki.caFile, password: 'wrong' })}devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [${FROM}], upstream: primary }
`,
        });
        try {
          assert.equal((await send(bridge)).code, 250);
          await waitUntil('a deferred line', () => line(bridge, 'deferred') !== undefined);
          const deferred = line(bridge, 'deferred')!;
          assert.match(String(deferred.response), /^primary: AUTH PLAIN: 535 5\.7\.8 .*; backup: AUTH PLAIN: 535 5\.7\.8 /);
          assert.match(String(deferred.hint), /wrong account or app password/);
          const list = await runCli(['queue', 'list', '-c', bridge.file]);
          assert.match(list.stdout, /primary: AUTH PLAIN: 535 5\.7\.8.*backup: .*\(hint: wrong account or app password/);
          const id = /^([0-9A-Z]{6,})\s/m.exec(list.stdout.split('\n').slice(1).join('\n'))?.[1];
          const show = await runCli(['queue', 'show', id!, '-c', bridge.file]);
          assert.match(show.stdout, /^hint: +wrong account or app password/m);
          assert.match(show.stdout, /^upstream: +primary/m);
        } finally {
          await bridge.stop();
        }
      } finally {
        await backup.close();
      }
    },
  );
});

test('a primary that swallows connections: one connect_timeout, then the fallback goes first for a while', async () => {
  const swallowed: net.Socket[] = [];
  const silent = net.createServer((socket) => swallowed.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    await withChain({ port: (silent.address() as net.AddressInfo).port }, async ({ bridge, backup }) => {
      assert.equal((await send(bridge)).code, 250);
      await backup.waitForMessages(1, 10_000);
      assert.equal(swallowed.length, 1);
      const started = Date.now();
      const second = await send(bridge);
      assert.match(second.response ?? '', /Relayed: 250/);
      assert.ok(Date.now() - started < 1500, 'the second message waited for the silent primary again');
      assert.equal(swallowed.length, 1, 'the silent primary was tried again at once');
    });
  } finally {
    for (const socket of swallowed) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

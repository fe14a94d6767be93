import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { configSchema } from '../../src/config/schema.js';
import { Alert } from '../../src/observe/alert.js';
import { createLogger } from '../../src/observe/logger.js';
import { SendingBudgets } from '../../src/policy/budgets.js';
import { FreezeStore } from '../../src/policy/freeze-store.js';
import { Lockout } from '../../src/policy/lockout.js';
import { SlidingWindow } from '../../src/policy/sliding-window.js';
import { deviceFrom } from '../support/device.js';

const lockoutSettings = (overrides: Record<string, unknown> = {}) =>
  configSchema.parse({ listen: [{ port: 25, tls: 'none' }], upstreams: {}, devices: {}, lockout: overrides }).lockout;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-limits-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a sliding window allows exactly `limit` events in any window, and frees room as they age', () => {
  const window = new SlidingWindow(3, 1000);
  for (const at of [0, 100, 200]) {
    assert.ok(window.hasRoom(at));
    window.add(at);
  }
  assert.equal(window.hasRoom(999), false);
  assert.equal(window.hasRoom(1000), true, 'the first event left the window');
  assert.equal(window.count(1150), 1);
  // Many events over a long time: memory stays bounded by the live events.
  const busy = new SlidingWindow(10, 100);
  for (let at = 0; at < 100_000; at += 10) if (busy.hasRoom(at)) busy.add(at);
  assert.equal(busy.count(100_000), 9);
});

test('lockout defaults: a device that mistypes, even trying three mechanisms twice over, is not locked out', () => {
  const lockout = new Lockout(lockoutSettings());
  for (let i = 0; i < 4; i++) assert.deepEqual(lockout.fail('192.168.1.40', 'doorphone', i * 1000), []);
  assert.equal(lockout.check('192.168.1.40', 'doorphone', 5000), undefined);
  const [lock] = lockout.fail('192.168.1.40', 'doorphone', 5000);
  assert.deepEqual(lock, { scope: 'ip', key: '192.168.1.40', until: 65_000 });
});

test('lockout per IP grows with each lock, expires, and counts IPv4-mapped addresses as the same client', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 3, username_failures: 0, window: '1m', duration: '1s', max_duration: '3s' }));
  const failUntilLocked = (now: number) => {
    lockout.fail('::ffff:10.0.0.9', 'a', now);
    lockout.fail('10.0.0.9', 'b', now);
    return lockout.fail('10.0.0.9', 'c', now);
  };
  assert.deepEqual(failUntilLocked(0), [{ scope: 'ip', key: '10.0.0.9', until: 1000 }]);
  assert.equal(lockout.check('::ffff:10.0.0.9', 'anyone', 999)?.scope, 'ip');
  assert.equal(lockout.check('10.0.0.8', 'anyone', 999), undefined, 'other clients are not affected');
  assert.equal(lockout.check('10.0.0.9', 'anyone', 1000), undefined, 'the lock expires');
  assert.equal(failUntilLocked(1000)[0].until, 3000, 'the second lock lasts twice as long');
  assert.equal(failUntilLocked(3000)[0].until, 6000, 'and is capped at max_duration');
  // Quiet for a whole window after the last lock: the next lock is short again.
  assert.equal(failUntilLocked(6000 + 60_000)[0].until, 66_000 + 1000);
});

test('lockout per username catches guessing spread over many addresses, and a success does not wipe it', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 0, username_failures: 3 }));
  lockout.fail('10.0.0.1', 'Doorphone', 0);
  lockout.fail('10.0.0.2', 'doorphone', 0);
  lockout.succeed('10.0.0.3');
  const [lock] = lockout.fail('10.0.0.3', 'DOORPHONE', 0);
  assert.equal(lock.scope, 'username');
  assert.equal(lockout.check('10.0.0.99', 'doorphone', 1)?.scope, 'username');
  assert.equal(lockout.check('10.0.0.99', 'printer', 1), undefined);
});

test('a success forgets the failures of its IP, so a fixed typo starts from zero', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 3 }));
  lockout.fail('10.0.0.1', 'doorphone', 0);
  lockout.fail('10.0.0.1', 'doorphone', 0);
  lockout.succeed('10.0.0.1');
  assert.deepEqual(lockout.fail('10.0.0.1', 'doorphone', 0), []);
});

test('budgets: messages and recipients per window, every limit at once, and a freeze past freeze_after', async (t) => {
  const dir = await tempDir(t);
  const logs: { msg: string; level: string }[] = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line)) });
  const freezes = new FreezeStore(dir);
  await freezes.init();
  const budgets = new SendingBudgets(freezes, new Alert(undefined, 'bridge.test', logger), logger);
  const device = deviceFrom({ password: 'x', limits: { messages: ['2/1s', '3/1h'], recipients: '2/1h' }, freeze_after: '5/1h' });
  const sender = { clientIp: '10.0.0.5', saslUsername: 'device' };
  const results = [0, 1, 2, 1000, 1001, 1002].map((now) => budgets.admitMessage(device, sender, now));
  assert.deepEqual(
    results.map((r) => (r.ok ? 'ok' : r.refusal === 'over-budget' ? `over ${r.limit.count}/${r.limit.per}` : r.refusal)),
    ['ok', 'ok', 'over 2/1s', 'ok', 'over 3/1h', 'frozen'],
  );
  assert.ok(freezes.isFrozen('device'));
  assert.deepEqual(budgets.admitRecipient(device, 2000), { ok: false, refusal: 'frozen' });
  assert.ok(logs.some((l) => l.msg === 'device frozen' && l.level === 'error'));
  // The freeze reaches the disk: another process (the CLI) sees it.
  const cli = new FreezeStore(dir);
  for (let i = 0; i < 100 && (await cli.list()).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  const [record] = await cli.list();
  assert.equal(record.device, 'device');
  assert.equal(record.client_ip, '10.0.0.5');
  assert.match(record.reason, /^6 message attempts within 1h \(freeze_after 5\/1h\)$/);

  const recipients = deviceFrom({ password: 'x', limits: { recipients: '2/1h' } }, 'printer');
  assert.deepEqual(
    [0, 1, 2].map((now) => budgets.admitRecipient(recipients, now).ok),
    [true, true, false],
  );
  assert.equal(recipients.freezeAfter, undefined, 'no messages budget, no default freeze');
});

test('freeze_after defaults to three times the first messages budget, and false turns it off', () => {
  assert.deepEqual(deviceFrom({ password: 'x', limits: { messages: ['20/1h', '100/1d'] } }).freezeAfter, {
    count: 60,
    per: '1h',
    window: 3_600_000,
  });
  assert.equal(deviceFrom({ password: 'x', limits: { messages: '20/1h' }, freeze_after: false }).freezeAfter, undefined);
});

test('a freeze written by one process is seen by another at once, and an unfreeze there is seen here within 200 ms', async (t) => {
  const dir = await tempDir(t);
  const server = new FreezeStore(dir);
  const cli = new FreezeStore(dir);
  await server.init();
  assert.equal(server.isFrozen('printer.lan'), false);
  await server.freeze({ device: 'printer.lan', frozen_at: new Date().toISOString(), reason: 'test' });
  await server.freeze({ device: '../escape', frozen_at: new Date().toISOString(), reason: 'test' });
  assert.ok(cli.isFrozen('printer.lan'));
  assert.ok(cli.isHeld('../escape'));
  assert.deepEqual((await readdir(server.dir)).sort(), ['%2E%2E%2Fescape.json', 'printer%2Elan.json']);
  assert.equal(await cli.unfreeze('printer.lan'), true);
  assert.equal(await cli.unfreeze('printer.lan'), false);
  // The server looks again once its check interval has passed; the racy-stamp rule covers a change
  // made in the same clock tick as its last look.
  await new Promise((resolve) => setTimeout(resolve, 250));
  assert.equal(server.isFrozen('printer.lan'), false);
  assert.equal(server.isFrozen('../escape'), true);
  assert.deepEqual(
    (await cli.list()).map((r) => r.device),
    ['../escape'],
  );
});

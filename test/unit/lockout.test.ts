import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { formatStoredSecret } from '../../src/auth/stored-secret.js';
import { hashSecret } from '../../src/auth/hash-secret.js';
import { configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/observe/logger.js';
import { Authenticator } from '../../src/policy/authenticator.js';
import { clientKey } from '../../src/policy/client-key.js';
import { DeviceDirectory, type AuthAttempt } from '../../src/policy/devices.js';
import { FreezeStore } from '../../src/policy/freeze-store.js';
import { Lockout, MAX_KEYS, type AdmittedAttempt } from '../../src/policy/lockout.js';

const parse = (top: Record<string, unknown>) =>
  configSchema.parse({
    listen: [{ port: 25, tls: 'none' }],
    upstreams: { capture: { type: 'directory', path: 'c' } },
    devices: {},
    ...top,
  });

const lockoutSettings = (overrides: Record<string, unknown> = {}) => parse({ lockout: overrides }).lockout;

const plain = (username: string, password: string): AuthAttempt => ({ mechanism: 'PLAIN', username, password });

interface Logged {
  msg: string;
  [field: string]: unknown;
}

async function authenticator(t: TestContext, devices: Record<string, unknown>, lockout: Record<string, unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'smtp-bridge-lockout-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = parse({ devices, lockout });
  const logs: Logged[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as Logged) });
  const directory = new DeviceDirectory(config.devices);
  return { auth: new Authenticator(directory, new Lockout(config.lockout), new FreezeStore(dir), logger), directory, logs };
}

test('a full lockout table keeps counting: a new key past 10,000 failing ones is still locked', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 0, username_failures: 3 }));
  for (let i = 0; i <= MAX_KEYS; i++) lockout.fail('10.0.0.1', `sprayed-${i}`, 1000);
  assert.deepEqual(lockout.fail('10.0.0.1', 'victim', 2000), []);
  assert.deepEqual(lockout.fail('10.0.0.1', 'victim', 2000), []);
  assert.deepEqual(lockout.fail('10.0.0.1', 'victim', 2000), [{ scope: 'username', key: 'victim', until: 62_000 }]);
  assert.equal(lockout.check('10.0.0.9', 'victim', 2001)?.scope, 'username');
});

test('filling the lockout table does not lift a lock: unlocked keys are evicted first, oldest first', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 0, username_failures: 2 }));
  lockout.fail('10.0.0.1', 'locked', 0);
  assert.equal(lockout.fail('10.0.0.1', 'locked', 0).length, 1);
  lockout.fail('10.0.0.1', 'oldest-unlocked', 1);
  for (let i = 0; i < MAX_KEYS * 2; i++) lockout.fail('10.0.0.1', `sprayed-${i}`, 2);
  assert.equal(lockout.check('10.0.0.1', 'locked', 3)?.scope, 'username', 'the lock survives a spray twice the table size');
  // The evicted key starts over: one more failure does not lock it.
  assert.deepEqual(lockout.fail('10.0.0.1', 'oldest-unlocked', 4), []);
});

test('parallel attempts from one client get at most ip_failures password checks', async () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 5, username_failures: 0 }));
  let checks = 0;
  const attempt = async (): Promise<'checked' | 'locked'> => {
    const admitted = await lockout.admit('10.0.0.7', 'guess');
    if ('scope' in admitted) return 'locked';
    checks++;
    await sleep(20); // a slow scrypt check
    admitted.failed();
    return 'checked';
  };
  const outcomes = await Promise.all(Array.from({ length: 100 }, attempt));
  assert.equal(checks, 5);
  assert.equal(outcomes.filter((o) => o === 'locked').length, 95);
});

test('a burst of parallel logins with the right password waits for room instead of being refused', async () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 2 }));
  let peak = 0;
  let running = 0;
  const login = async () => {
    const admitted = (await lockout.admit('10.0.0.8', 'printer')) as AdmittedAttempt;
    assert.ok(!('scope' in admitted), 'a login that fails nothing is never locked out');
    peak = Math.max(peak, ++running);
    await sleep(10);
    running--;
    admitted.succeeded();
  };
  await Promise.all(Array.from({ length: 6 }, login));
  assert.equal(peak, 2, 'no more in flight than could fail without passing the limit');
});

test('an attempt settles once: a second outcome counts nothing', async () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 2 }));
  const admitted = (await lockout.admit('10.0.0.9', 'x')) as AdmittedAttempt;
  assert.deepEqual(admitted.failed(), []);
  assert.deepEqual(admitted.failed(), []);
  admitted.withdrawn();
  assert.ok(!('scope' in (await lockout.admit('10.0.0.9', 'x'))), 'one failure counted, not two');
});

test('client keys: IPv4 per address, IPv6 per network of the configured prefix', () => {
  assert.equal(clientKey('192.168.1.5', 64), '192.168.1.5');
  assert.equal(clientKey('::ffff:192.168.1.5', 64), '192.168.1.5');
  assert.equal(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2::1', 64), clientKey('2001:db8:1:2:ffff::9', 64));
  assert.notEqual(clientKey('2001:db8:1:2::1', 64), clientKey('2001:db8:1:3::1', 64));
  assert.equal(clientKey('2001:db8:1:2::1', 48), '2001:db8:1::/48');
  assert.equal(clientKey('2001:db8::1', 128), '2001:db8::1/128');
  assert.equal(clientKey('fe80::1%eth0', 64), 'fe80::/64');
  assert.equal(clientKey('::1', 64), '::/64');
});

test('40 addresses in one IPv6 /64 are one client for the lockout; the next /64 is another', () => {
  const lockout = new Lockout(lockoutSettings({ ip_failures: 5, username_failures: 0 }));
  const locks = Array.from({ length: 40 }, (_, i) => lockout.fail(`2001:db8:5:6::${(i + 1).toString(16)}`, `u${i}`, i)).flat();
  assert.deepEqual(locks[0], { scope: 'ip', key: '2001:db8:5:6::/64', until: 4 + 60_000 });
  assert.equal(lockout.check('2001:db8:5:6:dead::beef', 'x', 100)?.key, '2001:db8:5:6::/64');
  assert.equal(lockout.check('2001:db8:5:7::1', 'x', 100), undefined);
  const per128 = new Lockout(lockoutSettings({ ip_failures: 5, username_failures: 0, ipv6_prefix: 128 }));
  for (let i = 1; i <= 40; i++)
    assert.deepEqual(per128.fail(`2001:db8:5:6::${i.toString(16)}`, 'u', 0), [], 'ipv6_prefix: 128 counts addresses');
});

test('failures from outside a device’s networks lock the client, never the device at home', async (t) => {
  const { auth, logs } = await authenticator(
    t,
    { doorphone: { password: 'right', senders: ['d@example.net'], upstream: 'capture', networks: ['10.1.0.0/24'] } },
    { ip_failures: 3, username_failures: 2 },
  );
  const context = (clientIp: string) => ({ clientIp, secure: true, tls: 'TLSv1.2' });
  for (const ip of ['192.168.9.1', '192.168.9.2', '192.168.9.3']) {
    for (let i = 0; i < 3; i++) await auth.authenticate(plain('doorphone', 'guess'), context(ip));
  }
  const outside = logs.filter((line) => line.msg === 'client locked out');
  assert.equal(outside.length, 3, 'each outside client is locked after its own failures');
  assert.equal(logs.filter((line) => line.msg === 'username locked out').length, 0);
  const home = await auth.authenticate(plain('doorphone', 'right'), context('10.1.0.5'));
  assert.equal(home.ok, true, 'the device logs in from home');
  const refused = await auth.authenticate(plain('doorphone', 'guess'), context('192.168.9.50'));
  assert.deepEqual([refused.ok, !refused.ok && refused.outsideNetworks], [false, true]);
  // Inside its networks, failures still count for the username.
  await auth.authenticate(plain('doorphone', 'guess'), context('10.1.0.6'));
  await auth.authenticate(plain('doorphone', 'guess'), context('10.1.0.7'));
  assert.equal(logs.filter((line) => line.msg === 'username locked out').length, 1);
});

test('an unknown username costs the same scrypt as a known one (within a factor of 2)', async (t) => {
  const secret = formatStoredSecret(await hashSecret('the-password', 'SCRYPT'));
  const { auth } = await authenticator(
    t,
    { hashed: { secret, mechanisms: ['PLAIN', 'LOGIN'], senders: ['h@example.net'], upstream: 'capture' } },
    { ip_failures: 0, username_failures: 0 },
  );
  const time = async (username: string) => {
    const start = process.hrtime.bigint();
    const verdict = await auth.authenticate(plain(username, 'wrong'), { clientIp: '10.0.0.1', secure: true, tls: 'TLSv1.2' });
    assert.equal(verdict.ok, false);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  // Interleaved, so a busy machine slows both alike; medians, so one stall does not decide.
  await time('hashed');
  const samples = { known: [] as number[], unknown: [] as number[] };
  for (let i = 0; i < 9; i++) {
    samples.known.push(await time('hashed'));
    samples.unknown.push(await time('nobody'));
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[4];
  const known = median(samples.known);
  const unknown = median(samples.unknown);
  assert.ok(known > 5, `scrypt takes time (${known} ms)`);
  assert.ok(unknown > known / 2 && unknown < known * 2, `known ${known.toFixed(1)} ms, unknown ${unknown.toFixed(1)} ms`);
});

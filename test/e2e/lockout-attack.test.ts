import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { logsAbout, startTestBridge, type TestBridge } from '../support/bridge.js';
import { deviceYaml, submitAs } from '../support/configured-device.js';

/**
 * Password guessing against a running bridge with real clients from several
 * loopback addresses: per IP and per username lockout, growing locks, and
 * nothing of a guess in the log.
 */

let bridge: TestBridge;

before(async () => {
  // Locks long enough that a client starting slowly on a busy machine still meets them, short enough to wait out.
  bridge = await startTestBridge({
    yaml: `lockout: { ip_failures: 3, username_failures: 6, window: 1m, duration: 5s, max_duration: 10s }
upstreams:
  capture: { type: directory, path: captured }
devices:
${deviceYaml('guessed')}${deviceYaml('victim')}`,
  });
});

after(() => bridge?.stop());

describe('brute force', () => {
  test('failed AUTHs from one IP lock that IP out (454 4.7.0, no password check) for a growing period; others are unaffected', async () => {
    const guess = (password: string, sourceAddress = '127.0.0.3') => submitAs(bridge, 'guessed', { password, sourceAddress });
    for (let i = 0; i < 3; i++) assert.equal((await guess(`guess-${i}`)).code, 535);
    const [lock] = logsAbout(bridge.logs, 'client locked out', { client_ip: '127.0.0.3', scope: 'ip' });
    assert.ok(lock, 'no lockout logged');
    const locked = await guess('guessed-secret');
    assert.equal(locked.code, 454, locked.transcript);
    assert.match(locked.transcript, /4\.7\.0 Too many failed authentications/);
    assert.equal(
      logsAbout(bridge.logs, 'authentication failed', {
        client_ip: '127.0.0.3',
        reason: 'locked-out',
        sasl_method: 'PLAIN',
        sasl_username: 'guessed',
      }).length,
      1,
    );
    assert.equal((await guess('guessed-secret', '127.0.0.4')).code, 250, 'another address is not locked out');

    await sleep(Math.max(0, Date.parse(String(lock.until)) + 100 - Date.now()));
    assert.equal((await guess('guessed-secret')).code, 250, 'the lock expired');
    for (let i = 0; i < 3; i++) await guess(`again-${i}`);
    const locks = logsAbout(bridge.logs, 'client locked out', { client_ip: '127.0.0.3' });
    assert.equal(locks.length, 2);
    const lasting = Date.parse(String(locks[1].until)) - Date.parse(String(locks[1].time));
    assert.ok(lasting >= 9900 && lasting <= 10100, `the second lock should last 10 s, lasts ${lasting} ms`);
  });

  test('failed AUTHs for one username from many IPs lock the username out everywhere; the log never holds a password', async () => {
    for (let i = 0; i < 6; i++)
      assert.equal((await submitAs(bridge, 'victim', { password: `spray-${i}`, sourceAddress: `127.0.1.${10 + (i % 3)}` })).code, 535);
    assert.equal(logsAbout(bridge.logs, 'username locked out', { sasl_username: 'victim', scope: 'username' }).length, 1);
    const locked = await submitAs(bridge, 'victim', { sourceAddress: '127.0.1.99' });
    assert.equal(locked.code, 454, locked.transcript);
    const failures = logsAbout(bridge.logs, 'authentication failed', { sasl_username: 'victim' });
    assert.ok(failures.every((line) => line.client_ip && line.sasl_method === 'PLAIN'));
    const logText = JSON.stringify(bridge.logs);
    assert.ok(!logText.includes('spray-') && !logText.includes('victim-secret'), 'a password reached the log');
  });
});

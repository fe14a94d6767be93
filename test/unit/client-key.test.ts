import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientKey } from '../../src/policy/client-key.js';

test('an IPv6 client counted by its /64: every address in it is the same client', () => {
  const key = clientKey('2001:db8:1:2::1', 64);
  for (const address of ['2001:db8:1:2::2', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:DB8:1:2:0:0:0:99']) {
    assert.equal(clientKey(address, 64), key, address);
  }
  assert.notEqual(clientKey('2001:db8:1:3::1', 64), key, 'the next /64 is another client');
  assert.equal(key, '2001:db8:1:2::/64');
});

test('an IPv4 client is counted by its address, also when a dual-stack listener reports it IPv4-mapped', () => {
  assert.equal(clientKey('192.168.1.20', 64), '192.168.1.20');
  assert.equal(clientKey('::ffff:192.168.1.20', 64), '192.168.1.20');
  assert.notEqual(clientKey('192.168.1.21', 64), clientKey('192.168.1.20', 64));
});

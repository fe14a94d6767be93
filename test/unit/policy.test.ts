import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressRules } from '../../src/policy/addresses.js';
import { NetworkList } from '../../src/policy/networks.js';

test('networks match IPv4, IPv6 and IPv4-mapped IPv6 clients', () => {
  const lan = new NetworkList(['192.168.1.0/24', 'fd00::/8', '10.0.0.7']);
  assert.ok(lan.contains('192.168.1.20'));
  assert.ok(lan.contains('::ffff:192.168.1.20'));
  assert.ok(lan.contains('fd12::1'));
  assert.ok(lan.contains('10.0.0.7'));
  assert.equal(lan.contains('10.0.0.8'), false);
  assert.equal(lan.contains('192.168.2.1'), false);
  assert.equal(lan.contains('::1'), false);
  assert.equal(lan.contains('not-an-ip'), false);
  assert.ok(new NetworkList(['::ffff:127.0.0.0/104']).contains('127.0.0.5'));
});

test('address rules: exact addresses and @domain, domain case-insensitive, local part exact', () => {
  const rules = new AddressRules(['Door@Example.net', '@corp.example']);
  assert.ok(rules.allows('Door@example.NET'));
  assert.equal(rules.allows('door@example.net'), false);
  assert.ok(rules.allows('anyone@CORP.example'));
  assert.equal(rules.allows('anyone@sub.corp.example'), false);
  assert.equal(rules.allows(''), false);
  assert.equal(rules.allows('nobody'), false);
  assert.ok(new AddressRules(undefined).allows('whoever@wherever'));
});

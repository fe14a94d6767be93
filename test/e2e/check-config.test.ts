import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCliSync } from '../support/cli.js';
import { CRAM_FORM, HEAD, SCRYPT_FORM, tempDir, writeConfig, writeDeviceConfig, writeFullConfig } from '../support/config-files.js';

/** `smtp-bridge check-config` as an operator runs it: what it prints, and its exit codes. */

const checkConfig = (args: string[], env: NodeJS.ProcessEnv = {}) => runCliSync(['check-config', ...args], { env });

test('check-config prints a summary of a good config and no secret', (t) => {
  const dir = tempDir(t);
  const file = writeFullConfig(dir, 0o644);
  const result = checkConfig(['-c', file], { SMTP_BRIDGE_TEST_DOORPHONE: 'door-secret-from-env' });
  assert.equal(result.status, 0, result.stderr);
  const lines = result.stdout.split('\n');
  for (const expected of [
    `config:    ${file} (ok)`,
    'hostname:  smtp-bridge.lan',
    'realm:     smtp-bridge.lan (DIGEST-MD5)',
    'limits:    500 connections, 100 per client; 1m per command line, 30m per session; 100 junk commands or 20 errors without progress',
    '  0.0.0.0:587     tls starttls  cleartext AUTH refused',
    '  127.0.0.1:2525  tls none      cleartext AUTH allowed',
    `  isp: smtp smtp.example.net:465, tls implicit, min TLSv1.2, auth bridge@example.net with PLAIN, up to 20 at once, rate 30/1m, 10000/1d, ca ${join(dir, 'ca/extra.pem')}`,
    `  local: directory ${join(dir, 'captured')} (capture: writes .eml files, delivers nowhere)`,
    '  doorphone',
    '    auth:       required, mechanisms CRAM-MD5',
    '    recipients: me@example.com, @example.org',
    '    auth:       none (identified by network)',
    '    recipients: any',
  ]) {
    assert.ok(lines.includes(expected), `missing line ${JSON.stringify(expected)} in:\n${result.stdout}`);
  }
  for (const secret of ['door-secret-from-env', 'upstream-secret']) {
    assert.ok(!result.stdout.includes(secret) && !result.stderr.includes(secret), `${secret} was printed`);
  }
});

test('check-config shows the LAN default for a device without networks, and warnings', (t) => {
  const file = writeConfig(
    tempDir(t),
    [...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: local'],
    0o640,
  );
  const result = checkConfig(['--config', file]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^ {4}networks: {3}LAN default \(127\.0\.0\.0\/8, /m);
  assert.match(
    result.stdout,
    /^warnings:\n {2}devices\.doorphone\.password: plain password in a config file readable by group or others \(mode 0640\)/m,
  );
  assert.ok(!result.stdout.includes('door-secret'));
});

test('check-config exits 1 with the issues on stderr for a bad config', (t) => {
  const file = writeConfig(tempDir(t), [
    ...HEAD,
    '    password: door-secret',
    '    mechanisms: [PLAIN, CRAM-SHA1]',
    '    senders: ["door@example.com"]',
    '    upstream: local',
  ]);
  const result = checkConfig(['-c', file]);
  assert.equal(result.status, 1);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr, `${file}: 1 error\ndevices.doorphone.mechanisms[1]: unknown mechanism "CRAM-SHA1" (line 8)\n`);
});

test('check-config exits 2 on an unknown option and 0 on --help', () => {
  const bad = checkConfig(['--verbose']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /usage: smtp-bridge check-config/);
  const help = checkConfig(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: smtp-bridge check-config \[-c FILE\]/);
});

test('check-config shows budgets, freeze, lockout, alert and stored forms, and warns about readable password-equivalent forms', (t) => {
  const file = writeDeviceConfig(
    t,
    [
      `secret: ["${SCRYPT_FORM}", "${CRAM_FORM}"]`,
      'mechanisms: [PLAIN, CRAM-MD5]',
      'limits: { messages: 20/1h }',
      'max_recipients: 3',
      'min_tls: TLSv1.2',
    ],
    {
      mode: 0o644,
      top: ['alert: { webhook: "http://127.0.0.1:9/hook" }'],
    },
  );
  const result = checkConfig(['-c', file]);
  assert.equal(result.status, 0, result.stderr);
  for (const expected of [
    'lockout:   5 failed AUTHs per client (IPv4 address, IPv6 /64), 10 failed AUTHs per username within 15m; locked 1m, doubling up to 1h',
    'alert:     webhook http://127.0.0.1:9/hook',
    '    secret:     {SCRYPT}, {CRAM-MD5} (stored forms)',
    '    tls:        TLSv1.2 or later',
    '    limits:     20/1h messages, 3 recipients per message',
    '    freeze:     after more than 60/1h message attempts',
  ]) {
    assert.ok(result.stdout.split('\n').includes(expected), `missing ${JSON.stringify(expected)} in:\n${result.stdout}`);
  }
  assert.match(
    result.stdout,
    /devices\.doorphone\.secret: \{CRAM-MD5\} form in a config file readable by group or others \(mode 0644\) logs in as this device; chmod 600 the file/,
  );
  assert.ok(!result.stdout.includes('1b16a7d2'), 'a stored form was printed');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { CRAM_FORM, issuesOf, SCRYPT_FORM, writeDeviceConfig as writeConfig } from '../support/config-files.js';

/** The config keys of issue 4 (containment) as check-config sees them: refusals name the key and line. */

test('a stored secret must serve every mechanism of its device, one form per scheme', async (t) => {
  assert.deepEqual(await issuesOf(writeConfig(t, [`secret: "${CRAM_FORM}"`, 'mechanisms: [CRAM-MD5, PLAIN]'])), [
    'devices.doorphone.secret: no stored form serves PLAIN; make one with smtp-bridge hash-secret --mechanisms CRAM-MD5,PLAIN (line 8)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, [`secret: ["${CRAM_FORM}", "${CRAM_FORM}"]`, 'mechanisms: [CRAM-MD5]'])), [
    'devices.doorphone.secret[1]: a second {CRAM-MD5} form (line 8)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['secret: "{CRAM-MD5}abc"', 'mechanisms: [CRAM-MD5]'])), [
    'devices.doorphone.secret[0]: {CRAM-MD5} form must be 64 hex digits (line 8)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: door-secret', `secret: "${CRAM_FORM}"`, 'mechanisms: [CRAM-MD5]'])), [
    'devices.doorphone.secret: give exactly one of password, password_env, password_file, secret (line 9)',
  ]);
  const { config } = await loadConfig(
    writeConfig(t, [`secret: ["${SCRYPT_FORM}", "${CRAM_FORM}"]`, 'mechanisms: [PLAIN, LOGIN, CRAM-MD5]']),
  );
  assert.deepEqual(
    config.devices.doorphone.secret?.map((form) => form.scheme),
    ['SCRYPT', 'CRAM-MD5'],
  );
});

test('auth: none refuses networks wider than a LAN unless the operator overrides it explicitly', async (t) => {
  const printer = (networks: string, extra: string[] = []) => ['auth: none', `networks: [${networks}]`, ...extra];
  assert.deepEqual(await issuesOf(writeConfig(t, printer('192.168.1.0/24, 10.0.0.0/8, 0.0.0.0/0, 203.0.113.7'))), [
    'devices.doorphone.networks[1]: 10.0.0.0/8 is wider than a LAN, and anyone in it could send as this device without a password; narrow it (private range, /16 or /48 at most) or set allow_wide_networks: true (line 9)',
    'devices.doorphone.networks[2]: 0.0.0.0/0 is wider than a LAN, and anyone in it could send as this device without a password; narrow it (private range, /16 or /48 at most) or set allow_wide_networks: true (line 9)',
    'devices.doorphone.networks[3]: 203.0.113.7 is wider than a LAN, and anyone in it could send as this device without a password; narrow it (private range, /16 or /48 at most) or set allow_wide_networks: true (line 9)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, printer('"::/0"'))), [
    'devices.doorphone.networks[0]: ::/0 is wider than a LAN, and anyone in it could send as this device without a password; narrow it (private range, /16 or /48 at most) or set allow_wide_networks: true (line 9)',
  ]);
  await loadConfig(writeConfig(t, printer('192.168.1.30, 172.16.0.0/16, "fd00:1:2::/48", "::ffff:192.168.1.0/120", 127.0.0.1')));
  await loadConfig(writeConfig(t, printer('10.0.0.0/8', ['allow_wide_networks: true'])));
});

test('cleartext AUTH and min_tls are checked against each other and against the listeners', async (t) => {
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x', 'allow_cleartext_auth: true', 'min_tls: TLSv1.2'])), [
    'devices.doorphone.allow_cleartext_auth: contradicts min_tls: a device cannot both need TLS and authenticate without it (line 9)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x', 'allow_cleartext_auth: true'], { cleartextListener: false })), [
    'devices.doorphone.allow_cleartext_auth: no listener has allow_cleartext_auth: true, so this device could never use it (line 9)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x', 'min_tls: TLSv1.4'])), [
    'devices.doorphone.min_tls: unknown TLS version "TLSv1.4" (use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3) (line 9)',
  ]);
});

test('limits, freeze_after, max_recipients and max_size: parsed, defaulted, and refused with the key named', async (t) => {
  const { config } = await loadConfig(
    writeConfig(t, ['password: x', 'limits: { messages: [20/1h, 100/1d], recipients: 50/1h }', 'max_recipients: 5', 'max_size: 1MB'], {
      top: ['lockout: { ip_failures: 3 }'],
    }),
  );
  const device = config.devices.doorphone;
  assert.deepEqual(device.limits, {
    messages: [
      { count: 20, per: '1h', window: 3_600_000 },
      { count: 100, per: '1d', window: 86_400_000 },
    ],
    recipients: [{ count: 50, per: '1h', window: 3_600_000 }],
  });
  assert.equal(device.max_recipients, 5);
  assert.equal(device.max_size, 1024 * 1024);
  assert.equal(device.freeze_after, undefined, 'the default (3x the first budget) is the policy stage’s to apply');
  assert.deepEqual(config.lockout, {
    ip_failures: 3,
    username_failures: 10,
    window: 900_000,
    duration: 60_000,
    max_duration: 3_600_000,
    ipv6_prefix: 64,
  });
  assert.equal(config.alert, undefined);

  assert.deepEqual(
    await issuesOf(writeConfig(t, ['password: x', 'limits: { messages: 20 per hour, recipients: [0/1h] }', 'freeze_after: 60/fortnight'])),
    [
      'devices.doorphone.limits.messages[0]: not a rate: "20 per hour" (use COUNT/DURATION, e.g. 20/1h or 100/1d) (line 9)',
      'devices.doorphone.limits.recipients[0]: not a rate: "0/1h" (use COUNT/DURATION, e.g. 20/1h or 100/1d) (line 9)',
      'devices.doorphone.freeze_after: not a rate: "60/fortnight" (use COUNT/DURATION, e.g. 20/1h or 100/1d) (line 10)',
    ],
  );
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x', 'max_size: 1GB', 'max_recipients: 0'])), [
    'devices.doorphone.max_size: must not exceed max_message_size (26214400 bytes) (line 9)',
    'devices.doorphone.max_recipients: must be at least 1 (line 10)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x'], { top: ['alert: { timeout: 5s }'] })), [
    'alert: give a command, a webhook, or both (line 11)',
  ]);
  assert.deepEqual(await issuesOf(writeConfig(t, ['password: x'], { top: ['alert: { webhook: "ftp://example.com/x" }'] })), [
    'alert.webhook: not an http(s) URL: "ftp://example.com/x" (line 11)',
  ]);
});

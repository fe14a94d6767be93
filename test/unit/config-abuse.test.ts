import assert from 'node:assert/strict';
import { truncate } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { loadConfig, MAX_CONFIG_BYTES } from '../../src/config/load.js';
import { HEAD, issuesOf, tempDir, writeConfig } from '../support/config-files.js';

/** Issue 9 item 11: a config file that is huge, absurd or an alias bomb gets one clear line per problem, with key and line. */

/** A config that loads; what a test appends starts at line 10. */
const VALID = [...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: local'];

const configFile = (t: TestContext, text: string) => writeConfig(tempDir(t), [text]);

test('a config file over 1 MiB is refused before it is parsed', async (t) => {
  const file = configFile(t, VALID.join('\n'));
  await truncate(file, 61 * 1024 * 1024);
  const before = process.memoryUsage().rss;
  assert.deepEqual(await issuesOf(file), ['the file is larger than 1 MiB; a config is a few kilobytes']);
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'reading it did not take the file into memory');
  // Just under the cap is still a config (comments pad it).
  const padded = configFile(t, `${VALID.join('\n')}\n${'#'.repeat(MAX_CONFIG_BYTES - VALID.join('\n').length - 3)}\n`);
  await loadConfig(padded, { skipSecrets: true });
});

test('a YAML alias bomb is named by key and line', async (t) => {
  const bomb = [
    ...VALID,
    'x-a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    'x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
  ];
  const [issue, ...rest] = await issuesOf(configFile(t, bomb.join('\n')));
  assert.deepEqual(rest, []);
  assert.match(issue, /^x-c\[0\]: aliases expand too far \(.*\); write the values out instead \(line 12\)$/);
});

test('a few ordinary aliases are still fine', async (t) => {
  const lines = [
    ...VALID.slice(0, 7),
    '    senders: &senders ["door@example.com"]',
    '    upstream: local',
    '  printer:',
    '    password: printer-secret',
    '    senders: *senders',
    '    upstream: local',
  ];
  const { config } = await loadConfig(configFile(t, lines.join('\n')), { skipSecrets: true });
  assert.deepEqual(config.devices.printer.senders, ['door@example.com']);
});

test('every number and duration has an upper bound, named with key and line', async (t) => {
  const lines = [
    ...VALID,
    '    max_recipients: 1000000', // 10
    '    limits: { messages: 99999999999/1h, recipients: 10/99999d }', // 11
    '    max_size: 99999999999999999999999TB', // 12
    'max_message_size: 2GB', // 13
    'greeting_delay_ms: 10001', // 14
    'delivery:', // 15
    '  sync_wait: 99999999999999999999d', // 16
    '  retry_max: 2d', // 17
    '  max_age: 1y', // 18
    '  shutdown_wait: 99999999999', // 19
    'lockout: { ip_failures: 101, username_failures: 1e300, window: 2d, duration: 8d, max_duration: 8d, ipv6_prefix: 129 }', // 20
    'alert: { command: "true", timeout: 1h }', // 21
  ];
  assert.deepEqual(await issuesOf(configFile(t, lines.join('\n'))), [
    'devices.doorphone.max_recipients: must be at most 10000 (line 10)',
    'devices.doorphone.limits.messages[0]: "99999999999/1h" is too large: at most 100000 per at most 31d (line 11)',
    'devices.doorphone.limits.recipients[0]: "10/99999d" is too large: at most 100000 per at most 31d (line 11)',
    'devices.doorphone.max_size: must be at most 1GB, got "99999999999999999999999TB" (line 12)',
    'max_message_size: must be at most 1GB, got "2GB" (line 13)',
    'greeting_delay_ms: must be at most 10000 (line 14)',
    'delivery.sync_wait: must be at most 5m, got "99999999999999999999d" (line 16)',
    'delivery.retry_max: must be at most 1d, got "2d" (line 17)',
    'delivery.max_age: must be at most 90d, got "1y" (line 18)',
    'delivery.shutdown_wait: must be at most 10m, got 99999999999 (line 19)',
    'lockout.ip_failures: must be at most 100 (line 20)',
    'lockout.username_failures: must be at most 100 (line 20)',
    'lockout.window: must be at most 1d, got "2d" (line 20)',
    'lockout.duration: must be at most 7d, got "8d" (line 20)',
    'lockout.max_duration: must be at most 7d, got "8d" (line 20)',
    'lockout.ipv6_prefix: must be at most 128 (line 20)',
    'alert.timeout: must be at most 5m, got "1h" (line 21)',
  ]);
});

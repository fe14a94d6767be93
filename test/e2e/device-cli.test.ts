import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parse } from 'yaml';
import { FreezeStore } from '../../src/policy/freeze-store.js';
import { CLI, NODE, runCliSync, supportScript } from '../support/cli.js';
import { deviceFrom } from '../support/device.js';

/** `smtp-bridge hash-secret` and `smtp-bridge device`, run as a person or a script would. */

/** Dovecot 2.3's `doveadm pw -s CRAM-MD5 -p himitsunokotoba`. */
const DOVECOT_CRAM = '{CRAM-MD5}1b16a7d2dc59efa12a7dfbedd1bbb9ae14c8b69d1be8fbb5a6694368054c3957';

const run = (args: string[], input = '') => runCliSync(args, { input });

function configDir(t: TestContext): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bridge.yaml');
  writeFileSync(
    file,
    [
      'hostname: bridge.lan',
      'sasl_realm: example.com',
      'listen: [{ port: 2587, tls: starttls }]',
      'upstreams: { local: { type: directory, path: captured } }',
      'devices:',
      '  doorphone:',
      '    username: info.example.com',
      '    password_env: NOT_SET_AND_NOT_NEEDED',
      '    mechanisms: [CRAM-MD5, DIGEST-MD5]',
      '    senders: [door@example.com]',
      '    upstream: local',
      '  printer:',
      '    password: printer-secret',
      '    limits: { messages: 10/1h }',
      '    senders: [printer@example.com]',
      '    upstream: local',
    ].join('\n'),
    { mode: 0o600 },
  );
  return { dir, file };
}

/** The forms from a `secret: [...]` line. */
const formsOf = (stdout: string): string[] => (parse(stdout) as { secret: string[] }).secret;

test('hash-secret reads the password from stdin and prints forms that authenticate, never the password', async () => {
  const result = run(['hash-secret', '--mechanisms', 'plain,login,CRAM-MD5'], 'himitsunokotoba\n');
  assert.equal(result.status, 0, result.stderr);
  assert.ok(!result.stdout.includes('himitsunokotoba'));
  const forms = formsOf(result.stdout);
  assert.match(forms[0], /^\{SCRYPT\}ln=14,r=8,p=1\$/);
  assert.equal(forms[1], DOVECOT_CRAM);
  const device = deviceFrom({ secret: forms, mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'] });
  assert.equal(await device.verify({ mechanism: 'LOGIN', username: 'device', password: 'himitsunokotoba' }), true);
  assert.equal(await device.verify({ mechanism: 'PLAIN', username: 'device', password: 'wrong' }), false);
  // With no mechanisms named and no device, the form for PLAIN and LOGIN.
  assert.deepEqual(
    formsOf(run(['hash-secret'], 'pw\r\n').stdout).map((form) => form.slice(0, 8)),
    ['{SCRYPT}'],
  );
});

test('hash-secret --device takes mechanisms, username and realm from the config, without needing its passwords', (t) => {
  const { file } = configDir(t);
  const result = run(['hash-secret', '-c', file, '--device', 'doorphone'], 'userpassword\n');
  assert.equal(result.status, 0, result.stderr);
  // The shared DIGEST-MD5 vector: info.example.com, realm example.com, userpassword.
  assert.deepEqual(formsOf(result.stdout), [
    '{CRAM-MD5}' + formsOf(run(['hash-secret', '--mechanisms', 'CRAM-MD5'], 'userpassword').stdout)[0].slice(10),
    '{DIGEST-MD5}0e50b2e5e12c4b08c865045a4bb780d1',
  ]);
  const explicit = run(
    ['hash-secret', '--mechanisms', 'DIGEST-MD5', '--username', 'info.example.com', '--realm', 'example.com'],
    'userpassword',
  );
  assert.deepEqual(formsOf(explicit.stdout), ['{DIGEST-MD5}0e50b2e5e12c4b08c865045a4bb780d1']);
});

test('hash-secret on a terminal asks twice without echo', (t) => {
  const steps = [
    { expect: 'Password: ', send: 'himitsunokotoba\r' },
    { expect: 'Again: ', send: 'himitsunokotoba\r' },
  ];
  const job = { argv: [NODE, CLI, 'hash-secret', '--mechanisms', 'CRAM-MD5'], steps: [...steps, { expect: 'secret: [' }, { expect: ']' }] };
  const result = spawnSync('python3', [supportScript('pty-run.py')], {
    input: JSON.stringify(job),
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (result.error) return t.skip(`python3 with pty is not available: ${result.error.message}`);
  assert.match(result.stdout, /Password: [\s\S]*Again: /);
  assert.ok(!result.stdout.includes('himitsunokotoba'), `the password was echoed:\n${result.stdout}`);
  assert.ok(result.stdout.includes(`secret: ["${DOVECOT_CRAM}"]`), result.stdout);
});

test('hash-secret: usage errors exit 2, failures it can explain exit 1', (t) => {
  const { file } = configDir(t);
  const unknown = run(['hash-secret', '--mechanisms', 'CRAM-SHA1'], 'pw');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^unknown mechanism "CRAM-SHA1"\n\nusage: smtp-bridge hash-secret/);
  const noUser = run(['hash-secret', '--mechanisms', 'DIGEST-MD5', '--realm', 'r'], 'pw');
  assert.equal(noUser.status, 2);
  assert.match(noUser.stderr, /DIGEST-MD5 needs --username \(or --device\) and a realm/);
  assert.equal(run(['hash-secret', '--bogus']).status, 2);
  const empty = run(['hash-secret'], '');
  assert.equal(empty.status, 1);
  assert.equal(empty.stderr, 'smtp-bridge: no password on standard input\n');
  const noDevice = run(['hash-secret', '-c', file, '--device', 'toaster'], 'pw');
  assert.equal(noDevice.status, 1);
  assert.match(noDevice.stderr, /^smtp-bridge: no device named "toaster" in /);
  const help = run(['hash-secret', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: smtp-bridge hash-secret/);
});

test('device list shows every device and freeze, including one left behind by a removed device; --json for scripts', async (t) => {
  const { dir, file } = configDir(t);
  const freezes = new FreezeStore(join(dir, 'spool'));
  await freezes.init();
  await freezes.freeze({
    device: 'printer',
    frozen_at: '2026-01-02T03:04:05.000Z',
    reason: '31 message attempts within 1h (freeze_after 30/1h)',
    client_ip: '192.168.1.30',
  });
  await freezes.freeze({ device: 'old-camera', frozen_at: '2025-12-24T00:00:00.000Z', reason: 'test' });
  const text = run(['device', 'list', '-c', file]);
  assert.equal(text.status, 0, text.stderr);
  assert.deepEqual(text.stdout.split('\n').slice(0, 4), [
    'DEVICE      USERNAME          AUTH                  STATE                                  QUEUED  FREEZE AFTER  LIMITS',
    'doorphone   info.example.com  CRAM-MD5,DIGEST-MD5   active                                 0       never         none',
    'printer     printer           PLAIN,LOGIN,CRAM-MD5  FROZEN since 2026-01-02T03:04:05.000Z  0       30/1h         10/1h messages',
    'old-camera  -                 (not in config)       FROZEN since 2025-12-24T00:00:00.000Z  0       never         none',
  ]);
  const json = JSON.parse(run(['device', 'list', '--json', '-c', file]).stdout) as { device: string; state: string; reason?: string }[];
  assert.deepEqual(
    json.map(({ device, state }) => [device, state]),
    [
      ['doorphone', 'active'],
      ['printer', 'frozen'],
      ['old-camera', 'frozen'],
    ],
  );
  const cleared = run(['device', 'unfreeze', 'old-camera', '-c', file]);
  assert.equal(cleared.status, 0, cleared.stderr);
  assert.equal(cleared.stdout, 'device "old-camera" unfrozen (was frozen since 2025-12-24T00:00:00.000Z: test); no queued messages\n');
});

test('device: usage errors exit 2 with the help, and --help exits 0', (t) => {
  const { file } = configDir(t);
  for (const args of [
    ['device'],
    ['device', 'freeze', 'printer'],
    ['device', 'unfreeze'],
    ['device', 'unfreeze', 'printer', '--release', '--drop'],
    ['device', 'list', 'printer'],
    ['device', 'list', '--drop'],
  ]) {
    const result = run([...args, '-c', file]);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /usage: smtp-bridge device list/);
  }
  assert.match(run(['device', 'freeze', 'printer', '-c', file]).stderr, /^unknown action "freeze"/);
  const notFrozen = run(['device', 'unfreeze', 'printer', '--release', '-c', file]);
  assert.equal(notFrozen.status, 1);
  assert.equal(notFrozen.stderr, 'smtp-bridge: device "printer" is not frozen\n');
  const help = run(['device', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /smtp-bridge device unfreeze NAME \[--release \| --drop\]/);
  assert.match(run(['--help']).stdout, /^ {2}device +list devices and their state, or unfreeze one$/m);
  assert.match(run(['--help']).stdout, /^ {2}hash-secret +turn a device password into the stored secret/m);
});

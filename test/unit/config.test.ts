import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { HEAD, issuesOf, tempDir, writeConfig, writeFullConfig } from '../support/config-files.js';

async function assertIssues(t: TestContext, lines: string[], expected: string[]): Promise<void> {
  const file = writeConfig(tempDir(t), lines);
  assert.deepEqual(await issuesOf(file), expected);
}

test('an unknown key is named at its own line', async (t) => {
  await assertIssues(
    t,
    [...HEAD, '    password: door-secret', '    pasword: typo', '    senders: ["door@example.com"]', '    upstream: local'],
    ['devices.doorphone.pasword: unknown key (line 8)'],
  );
});

test('an unknown mechanism is named by its index in the list', async (t) => {
  await assertIssues(
    t,
    [
      ...HEAD,
      '    password: door-secret',
      '    mechanisms:',
      '      - PLAIN',
      '      - CRAM-SHA1',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['devices.doorphone.mechanisms[1]: unknown mechanism "CRAM-SHA1" (line 10)'],
  );
});

test('a port that is not a number', async (t) => {
  await assertIssues(
    t,
    [
      'hostname: bridge.lan',
      'listen:',
      '  - port: 587',
      '    tls: starttls',
      '  - port: abc',
      '    tls: none',
      ...HEAD.slice(2),
      '    password: door-secret',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['listen[1].port: must be a port number, got "abc" (line 5)'],
  );
});

test('a port out of range', async (t) => {
  await assertIssues(
    t,
    [
      'listen:',
      '  - { port: 70000, tls: none }',
      ...HEAD.slice(2),
      '    password: door-secret',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['listen[0].port: must be between 1 and 65535 (line 2)'],
  );
});

test('an unknown listener tls mode', async (t) => {
  await assertIssues(
    t,
    [
      'listen:',
      '  - { port: 465, tls: ssl }',
      ...HEAD.slice(2),
      '    password: door-secret',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['listen[0].tls: unknown listener tls mode "ssl" (use none, starttls or implicit) (line 2)'],
  );
});

test('an upstream min_version below TLSv1.2 is refused', async (t) => {
  await assertIssues(
    t,
    [
      'listen:',
      '  - { port: 2525, tls: none }',
      'upstreams:',
      '  isp:',
      '    host: smtp.example.net',
      '    tls: implicit',
      '    min_version: TLSv1.1',
      '    auth: { user: bridge@example.net, password: upstream-secret }',
      'devices:',
      '  doorphone:',
      '    password: door-secret',
      '    senders: ["door@example.com"]',
      '    upstream: isp',
    ],
    ['upstreams.isp.min_version: upstream TLS below TLSv1.2 is refused, got "TLSv1.1" (line 7)'],
  );
});

test('a device naming an upstream that does not exist', async (t) => {
  await assertIssues(
    t,
    [...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: nope'],
    ['devices.doorphone.upstream: no upstream named "nope" (line 9)'],
  );
});

test('a missing required key is reported at its parent', async (t) => {
  await assertIssues(t, [...HEAD, '    password: door-secret', '    upstream: local'], ['devices.doorphone.senders: required (line 6)']);
});

test('two password sources', async (t) => {
  await assertIssues(
    t,
    [
      ...HEAD,
      '    password: door-secret',
      '    password_env: DOORPHONE_PASSWORD',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['devices.doorphone.password_env: give exactly one of password, password_env, password_file, secret (line 8)'],
  );
});

test('password_env naming an unset or empty variable', async (t) => {
  const saved = process.env.SMTP_BRIDGE_TEST_PASSWORD;
  t.after(() => {
    if (saved === undefined) delete process.env.SMTP_BRIDGE_TEST_PASSWORD;
    else process.env.SMTP_BRIDGE_TEST_PASSWORD = saved;
  });
  const lines = [...HEAD, '    password_env: SMTP_BRIDGE_TEST_PASSWORD', '    senders: ["door@example.com"]', '    upstream: local'];
  const expected = ['devices.doorphone.password_env: environment variable SMTP_BRIDGE_TEST_PASSWORD is not set (line 7)'];
  delete process.env.SMTP_BRIDGE_TEST_PASSWORD;
  await assertIssues(t, lines, expected);
  process.env.SMTP_BRIDGE_TEST_PASSWORD = '';
  await assertIssues(t, lines, expected);
});

test('password_file that does not exist', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, [
    ...HEAD,
    '    password_file: secrets/doorphone',
    '    senders: ["door@example.com"]',
    '    upstream: local',
  ]);
  assert.deepEqual(await issuesOf(file), [
    `devices.doorphone.password_file: cannot read ${join(dir, 'secrets/doorphone')}: no such file or directory (line 7)`,
  ]);
});

test('secret problems of devices and upstreams are reported together, in line order', async (t) => {
  const dir = tempDir(t);
  delete process.env.SMTP_BRIDGE_TEST_UNSET;
  const file = writeConfig(dir, [
    'listen:',
    '  - { port: 2525, tls: none }',
    'upstreams:',
    '  isp:',
    '    host: smtp.example.net',
    '    tls: starttls',
    '    auth:',
    '      user: bridge@example.net',
    '      password_env: SMTP_BRIDGE_TEST_UNSET',
    'devices:',
    '  doorphone:',
    '    password_file: /nonexistent/smtp-bridge/doorphone',
    '    senders: ["door@example.com"]',
    '    upstream: isp',
  ]);
  assert.deepEqual(await issuesOf(file), [
    'upstreams.isp.auth.password_env: environment variable SMTP_BRIDGE_TEST_UNSET is not set (line 9)',
    'devices.doorphone.password_file: cannot read /nonexistent/smtp-bridge/doorphone: no such file or directory (line 12)',
  ]);
});

test('a network that is not a CIDR', async (t) => {
  await assertIssues(
    t,
    [
      ...HEAD,
      '    password: door-secret',
      '    networks: [192.168.1.0/24, 192.168.1.0/33]',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ],
    ['devices.doorphone.networks[1]: not a network or address: "192.168.1.0/33" (line 8)'],
  );
});

test('a sender that is neither an address nor @domain', async (t) => {
  await assertIssues(
    t,
    [...HEAD, '    password: door-secret', '    senders: ["door.example.com"]', '    upstream: local'],
    ['devices.doorphone.senders[0]: not an address or @domain: "door.example.com" (line 8)'],
  );
});

test('a username used by two devices (case-insensitively)', async (t) => {
  await assertIssues(
    t,
    [
      ...HEAD,
      '    password: door-secret',
      '    senders: ["door@example.com"]',
      '    upstream: local',
      '  frontdoor:',
      '    username: DoorPhone',
      '    password: front-secret',
      '    senders: ["front@example.com"]',
      '    upstream: local',
    ],
    ['devices.frontdoor.username: username "doorphone" is already used by device "doorphone" (line 11)'],
  );
});

test('auth: none without networks points at the device', async (t) => {
  await assertIssues(
    t,
    [...HEAD.slice(0, 5), '  printer:', '    auth: none', '    senders: ["printer@example.com"]', '    upstream: local'],
    ['devices.printer.networks: a device with auth: none needs networks: it is identified by address alone (line 6)'],
  );
});

test('a YAML syntax error names its line', async (t) => {
  await assertIssues(
    t,
    [...HEAD, '    password: door: secret', '    senders: ["door@example.com"]', '    upstream: local'],
    ['syntax error: Nested mappings are not allowed in compact mappings (line 7)'],
  );
});

test('a duplicate key is refused', async (t) => {
  await assertIssues(
    t,
    [...HEAD, '    password: door-secret', '    password: other-secret', '    senders: ["door@example.com"]', '    upstream: local'],
    ['syntax error: Map keys must be unique (line 8)'],
  );
});

test('an empty file, or one with only comments', async (t) => {
  const expected = ['the file is empty: it needs at least listen, upstreams and devices'];
  await assertIssues(t, [], expected);
  await assertIssues(t, ['# nothing here yet'], expected);
});

test('a top level that is not a map', async (t) => {
  await assertIssues(t, ['- listen'], ['the top level must be a map of settings, got a list (line 1)']);
});

test('a config file that cannot be read', async (t) => {
  assert.deepEqual(await issuesOf(join(tempDir(t), 'missing.yaml')), ['cannot read the file: no such file or directory']);
});

test('the error message names the file and lists every issue in line order', async (t) => {
  const file = writeConfig(tempDir(t), [
    'listen:',
    '  - { port: 0, tls: none, colour: blue }',
    'upstreams:',
    '  local: { type: directory, path: captured }',
    'devices:',
    '  doorphone:',
    '    password: door-secret',
    '    senders: ["door@example.com"]',
  ]);
  await assert.rejects(loadConfig(file), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(
      err.message,
      `${file}: 3 errors\n` +
        'listen[0].port: must be between 1 and 65535 (line 2)\n' +
        'listen[0].colour: unknown key (line 2)\n' +
        'devices.doorphone.upstream: required (line 6)',
    );
    return true;
  });
});

test('a full config loads with defaults applied and paths resolved against its directory', async (t) => {
  const dir = tempDir(t);
  process.env.SMTP_BRIDGE_TEST_DOORPHONE = 'door-secret';
  t.after(() => delete process.env.SMTP_BRIDGE_TEST_DOORPHONE);
  const file = writeFullConfig(dir);
  const loaded = await loadConfig(file);

  assert.equal(loaded.file, file);
  assert.deepEqual(loaded.warnings, []);
  assert.deepEqual(loaded.generatedPasswords, []);
  const { config } = loaded;
  assert.equal(config.hostname, 'smtp-bridge.lan');
  assert.equal(config.sasl_realm, 'smtp-bridge.lan');
  assert.deepEqual(config.listen, [
    { port: 587, tls: 'starttls', address: '0.0.0.0', allow_cleartext_auth: false, auth_equals: true },
    { port: 2525, tls: 'none', address: '127.0.0.1', allow_cleartext_auth: true, auth_equals: true },
  ]);
  assert.deepEqual(config.tls, {
    cert_file: join(dir, 'certs/bridge.crt'),
    key_file: join(dir, 'certs/bridge.key'),
    min_version: 'TLSv1.1',
  });
  assert.equal(config.max_message_size, 10 * 1024 * 1024);
  assert.equal(config.greeting_delay_ms, 0);
  assert.deepEqual(config.spool, { dir: '/var/spool/smtp-bridge' });
  assert.deepEqual(config.log, { level: 'info', format: 'auto' });
  assert.deepEqual(config.delivery, {
    sync_wait: 10_000,
    retry_initial: 60_000,
    retry_max: 3_600_000,
    max_age: 432_000_000,
    shutdown_wait: 10_000,
  });
  assert.deepEqual(config.limits, {
    max_connections: 500,
    max_connections_per_ip: 100,
    line_timeout: 60_000,
    session_timeout: 1_800_000,
    max_junk_commands: 100,
    max_errors: 20,
  });
  assert.deepEqual(config.upstreams.isp, {
    type: 'smtp',
    host: 'smtp.example.net',
    port: 465,
    tls: 'implicit',
    min_version: 'TLSv1.2',
    ca_file: join(dir, 'ca/extra.pem'),
    connect_timeout: 15000,
    concurrency: 20,
    rate: [
      { count: 30, per: '1m', window: 60_000 },
      { count: 10000, per: '1d', window: 86_400_000 },
    ],
    idle_timeout: 30000,
    auth: { user: 'bridge@example.net', password: 'upstream-secret', mechanism: 'PLAIN' },
  });
  assert.deepEqual(config.upstreams.local, { type: 'directory', path: join(dir, 'captured') });
  assert.deepEqual(config.devices.doorphone, {
    auth: 'required',
    password: 'door-secret',
    generate_password: false,
    mechanisms: ['CRAM-MD5'],
    networks: ['192.168.1.0/24'],
    senders: ['door@example.com'],
    recipients: ['me@example.com', '@example.org'],
    upstream: 'isp',
    rewrite_sender: false,
    rewrite_from: false,
    allow_cleartext_auth: false,
    allow_bare_lf_dot: false,
    allow_wide_networks: false,
  });
  assert.deepEqual(config.devices.printer, {
    auth: 'none',
    generate_password: false,
    mechanisms: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    networks: ['192.168.1.50'],
    senders: ['@example.com'],
    upstream: 'local',
    rewrite_sender: false,
    rewrite_from: false,
    allow_cleartext_auth: false,
    allow_bare_lf_dot: false,
    allow_wide_networks: false,
  });
});

test('relative paths do not depend on the working directory', async (t) => {
  const dir = tempDir(t);
  writeConfig(dir, [...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: local']);
  const cwd = process.cwd();
  process.chdir(dir);
  t.after(() => process.chdir(cwd));
  const { config, file } = await loadConfig('bridge.yaml');
  assert.equal(file, join(dir, 'bridge.yaml'));
  assert.equal(config.spool.dir, join(dir, 'spool'));
  assert.deepEqual(config.upstreams.local, { type: 'directory', path: join(dir, 'captured') });
});

test('password_env and password_file become password, and the source keys are removed', async (t) => {
  const dir = tempDir(t);
  process.env.SMTP_BRIDGE_TEST_DOORPHONE = 'from-env';
  t.after(() => delete process.env.SMTP_BRIDGE_TEST_DOORPHONE);
  writeFileSync(join(dir, 'printer.password'), 'from-file\n\n');
  writeFileSync(join(dir, 'scanner.password'), 'crlf-file\r\n');
  const file = writeConfig(dir, [
    ...HEAD,
    '    password_env: SMTP_BRIDGE_TEST_DOORPHONE',
    '    senders: ["door@example.com"]',
    '    upstream: local',
    '  printer:',
    '    password_file: printer.password',
    '    senders: ["printer@example.com"]',
    '    upstream: local',
    '  scanner:',
    `    password_file: ${join(dir, 'scanner.password')}`,
    '    senders: ["scanner@example.com"]',
    '    upstream: local',
  ]);
  const { devices } = (await loadConfig(file)).config;
  assert.equal(devices.doorphone.password, 'from-env');
  assert.equal(devices.printer.password, 'from-file\n', 'only one trailing newline is stripped');
  assert.equal(devices.scanner.password, 'crlf-file');
  for (const device of Object.values(devices)) {
    assert.ok(!('password_env' in device) && !('password_file' in device));
  }
});

test('an empty password_file is refused', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'door.password'), '\n');
  const file = writeConfig(dir, [...HEAD, '    password_file: door.password', '    senders: ["door@example.com"]', '    upstream: local']);
  assert.deepEqual(await issuesOf(file), [`devices.doorphone.password_file: ${join(dir, 'door.password')} is empty (line 7)`]);
});

test('generate_password creates a 0600 password file only when asked to', async (t) => {
  const dir = tempDir(t);
  const passwordFile = join(dir, 'secrets/demo.password');
  const file = writeConfig(dir, [
    ...HEAD.slice(0, 5),
    '  demo:',
    '    password_file: secrets/demo.password',
    '    generate_password: true',
    '    senders: ["demo@example.com"]',
    '    upstream: local',
  ]);

  const checked = await loadConfig(file);
  assert.deepEqual(checked.warnings, [`devices.demo.password_file: ${passwordFile} does not exist yet; serve will generate it`]);
  assert.equal(checked.config.devices.demo.password, undefined);
  assert.deepEqual(checked.generatedPasswords, []);
  assert.ok(!existsSync(passwordFile));

  const served = await loadConfig(file, { createMissingPasswords: true });
  const password = served.config.devices.demo.password;
  assert.ok(password);
  assert.match(password, /^[A-Za-z0-9_-]{24}$/);
  assert.deepEqual(served.generatedPasswords, [{ device: 'demo', file: passwordFile, password }]);
  assert.deepEqual(served.warnings, []);
  assert.equal(statSync(passwordFile).mode & 0o777, 0o600);
  assert.equal(readFileSync(passwordFile, 'utf8'), `${password}\n`);

  const again = await loadConfig(file, { createMissingPasswords: true });
  assert.equal(again.config.devices.demo.password, password, 'an existing password file is kept');
  assert.deepEqual(again.generatedPasswords, []);
});

test('a plain password in a config file readable by others is a warning', async (t) => {
  const dir = tempDir(t);
  const lines = [...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: local'];
  const readable = await loadConfig(writeConfig(dir, lines, 0o644));
  assert.deepEqual(readable.warnings, [
    'devices.doorphone.password: plain password in a config file readable by group or others (mode 0644); chmod 600 the file, or use password_env or password_file (line 7)',
  ]);
  assert.equal(readable.config.devices.doorphone.password, 'door-secret');
  const privateFile = await loadConfig(writeConfig(dir, lines, 0o600));
  assert.deepEqual(privateFile.warnings, []);
});

test('sasl_realm defaults to the hostname; auth_equals is per listener', async (t) => {
  const lines = [
    'hostname: bridge.lan',
    'sasl_realm: home.example',
    'listen:',
    '  - { port: 587, tls: starttls, auth_equals: false }',
    ...HEAD.slice(2),
  ];
  const { config } = await loadConfig(
    writeConfig(tempDir(t), [
      ...lines,
      '    password: door-secret',
      '    mechanisms: [DIGEST-MD5]',
      '    senders: ["door@example.com"]',
      '    upstream: local',
    ]),
  );
  assert.equal(config.sasl_realm, 'home.example');
  assert.equal(config.listen[0].auth_equals, false);
  assert.deepEqual(config.devices.doorphone.mechanisms, ['DIGEST-MD5']);
  await assertIssues(
    t,
    ['sasl_realm: ""', ...HEAD, '    password: door-secret', '    senders: ["door@example.com"]', '    upstream: local'],
    ['sasl_realm: must not be empty (line 1)'],
  );
});

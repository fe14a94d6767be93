import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';

async function issuesOf(yaml: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-config-'));
  try {
    const file = join(dir, 'bridge.yaml');
    writeFileSync(file, yaml, { mode: 0o600 });
    await assert.rejects(loadConfig(file), ConfigError);
    return await loadConfig(file).then(
      () => [],
      (err: ConfigError) => err.issues,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('field errors and cross-field errors are reported together, each with key and line', async () => {
  const issues = await issuesOf(
    [
      'listen:',
      '  - { port: 2525, tls: none }',
      '  - { port: 2525, tls: none }',
      'upstreams:',
      '  local: { type: directory, path: captured }',
      'devices:',
      '  doorphone:',
      '    password: one',
      '    password_env: TWO',
      '    mechanisms: [CRAM-MD5, NOPE]',
      '    senders: ["@example.net"]',
      '    upstream: nowhere',
      '  camera:',
      '    username: DOORPHONE',
      '    password: x',
      '    senders: ["@example.net"]',
      '    upstream: local',
      '    max_size: lots',
      '',
    ].join('\n'),
  );
  const expected = [
    /^listen\[1\]\.port: 0\.0\.0\.0:2525 is listed twice \(line 3\)$/,
    /^devices\.doorphone\.password_env: give exactly one of password, password_env, password_file, secret \(line 9\)$/,
    /^devices\.doorphone\.mechanisms\[1\]: unknown mechanism "NOPE" \(line 10\)$/,
    /^devices\.doorphone\.upstream: no upstream named "nowhere" \(line 12\)$/,
    /^devices\.camera\.username: username "doorphone" is already used by device "doorphone" \(line 14\)$/,
    /^devices\.camera\.max_size: not a size: "lots" .*\(line 18\)$/,
  ];
  for (const pattern of expected) {
    assert.ok(
      issues.some((issue) => pattern.test(issue)),
      `missing ${pattern}:\n${issues.join('\n')}`,
    );
  }
});

test('a config whose top level is not a map still gets one clear error, not a crash in the cross-field checks', async () => {
  const issues = await issuesOf('- just\n- a list\n');
  assert.equal(issues.length >= 1, true);
  assert.doesNotMatch(issues.join('\n'), /TypeError|Cannot read/);
});

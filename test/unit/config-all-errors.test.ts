import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { issuesOf, tempDir, writeConfig } from '../support/config-files.js';

/** The issues of a config file holding `yaml`. */
const issuesIn = (t: TestContext, yaml: string): Promise<string[]> => issuesOf(writeConfig(tempDir(t), [yaml]));

test('field errors and cross-field errors are reported together, each with key and line', async (t) => {
  const issues = await issuesIn(
    t,
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

test('a config whose top level is not a map still gets one clear error, not a crash in the cross-field checks', async (t) => {
  const issues = await issuesIn(t, '- just\n- a list\n');
  assert.equal(issues.length >= 1, true);
  assert.doesNotMatch(issues.join('\n'), /TypeError|Cannot read/);
});

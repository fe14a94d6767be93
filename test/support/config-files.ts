import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';

/** Config files for the tests of the loader and of check-config, written line by line so issues name known lines. */

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes the lines as `bridge.yaml` (mode 0600 unless told) and returns its path; line N of the file is lines[N-1]. */
export function writeConfig(dir: string, lines: string[], mode = 0o600): string {
  const file = join(dir, 'bridge.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  chmodSync(file, mode);
  return file;
}

/** Lines 1-6 of most broken configs: the device under test starts at line 7. */
export const HEAD = [
  'listen:',
  '  - { port: 2525, tls: none }',
  'upstreams:',
  '  local: { type: directory, path: captured }',
  'devices:',
  '  doorphone:',
];

/** The issues loadConfig refuses the file with; fails the test if it loads. */
export async function issuesOf(file: string): Promise<string[]> {
  try {
    await loadConfig(file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('the config loaded, but it should have been refused');
}

/** A config using most keys; its upstream's password_file is pointed at a real file by writeFullConfig. */
const FULL = [
  'listen:',
  '  - { port: 587, tls: starttls }',
  '  - { port: 2525, tls: none, address: 127.0.0.1, allow_cleartext_auth: true }',
  'tls:',
  '  min_version: TLSv1.1',
  'max_message_size: 10MB',
  'upstreams:',
  '  isp:',
  '    host: smtp.example.net',
  '    port: 465',
  '    tls: implicit',
  '    ca_file: ca/extra.pem',
  '    rate: [30/1m, 10000/1d]',
  '    auth:',
  '      user: bridge@example.net',
  '      password_file: /nonexistent-but-unused',
  '  local:',
  '    type: directory',
  '    path: captured',
  'spool:',
  '  dir: /var/spool/smtp-bridge',
  'devices:',
  '  doorphone:',
  '    password_env: SMTP_BRIDGE_TEST_DOORPHONE',
  '    mechanisms: [CRAM-MD5]',
  '    networks: [192.168.1.0/24]',
  '    senders: ["door@example.com"]',
  '    recipients: ["me@example.com", "@example.org"]',
  '    upstream: isp',
  '  printer:',
  '    auth: none',
  '    networks: [192.168.1.50]',
  '    senders: ["@example.com"]',
  '    upstream: local',
];

/** FULL with the upstream's password file pointed at a real file in `dir`. */
export function writeFullConfig(dir: string, mode = 0o600): string {
  writeFileSync(join(dir, 'isp.password'), 'upstream-secret\n');
  return writeConfig(
    dir,
    FULL.map((line) => line.replace('/nonexistent-but-unused', 'isp.password')),
    mode,
  );
}

/** Made by `smtp-bridge hash-secret` (Dovecot's form for CRAM-MD5). */
export const CRAM_FORM = '{CRAM-MD5}1b16a7d2dc59efa12a7dfbedd1bbb9ae14c8b69d1be8fbb5a6694368054c3957';
export const SCRYPT_FORM = '{SCRYPT}ln=14,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

/** A config whose devices section starts at line 6; `device` lines follow `  doorphone:` at line 7. */
export function writeDeviceConfig(
  t: TestContext,
  device: string[],
  { mode = 0o600, top = [] as string[], cleartextListener = true } = {},
): string {
  const lines = [
    'listen:',
    `  - { port: 2525, tls: none, allow_cleartext_auth: ${cleartextListener} }`,
    '  - { port: 2587, tls: starttls }',
    'upstreams:',
    '  local: { type: directory, path: captured }',
    'devices:',
    '  doorphone:',
    ...device.map((line) => `    ${line}`),
    '    senders: ["door@example.com"]',
    '    upstream: local',
    ...top,
  ];
  return writeConfig(tempDir(t), lines, mode);
}

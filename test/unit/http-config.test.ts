import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';

const BASE = `listen:
  - { port: 2587, tls: starttls }
upstreams:
  capture: { type: directory, path: captured }
devices:
  door: { password: door-secret, senders: ["@example.net"], upstream: capture }
`;

async function load(t: TestContext, yaml: string, files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-http-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  const file = join(dir, 'bridge.yaml');
  writeFileSync(file, BASE + yaml, { mode: 0o600 });
  return loadConfig(file);
}

async function refusal(t: TestContext, yaml: string): Promise<string[]> {
  const err = await load(t, yaml).then(
    () => assert.fail('the config was accepted'),
    (err: unknown) => err,
  );
  assert.ok(err instanceof ConfigError);
  return err.issues;
}

test('http on an address other machines reach is refused without a password, naming the key and line', async (t) => {
  for (const listen of ['0.0.0.0:8025', '192.168.1.2:8025', '"[::]:8025"']) {
    const issues = await refusal(t, `http:\n  listen: ${listen}\n`);
    assert.equal(issues.length, 1, listen);
    assert.match(
      issues[0],
      /^http\.listen: .* is reachable from other machines: give http\.password, password_env or password_file \(HTTP basic auth\) \(line 8\)$/,
    );
  }
});

test('http on loopback needs no password; a LAN address takes one from password_file', async (t) => {
  for (const listen of ['127.0.0.1:8025', '"[::1]:8025"']) {
    const { config } = await load(t, `http:\n  listen: ${listen}\n`);
    assert.equal(config.http?.password, undefined);
    assert.equal(config.http?.listen.port, 8025);
  }
  const { config } = await load(t, 'http:\n  listen: 0.0.0.0:8025\n  password_file: http.password\n', { 'http.password': 'let-me-see\n' });
  assert.deepEqual(config.http?.listen, { host: '0.0.0.0', port: 8025 });
  assert.equal(config.http?.password, 'let-me-see');
});

test('a malformed http.listen is refused with what to write', async (t) => {
  for (const listen of ['8025', 'localhost:8025', '127.0.0.1:99999', '::1:8025']) {
    const issues = await refusal(t, `http:\n  listen: "${listen}"\n`);
    assert.match(issues[0], /^http\.listen: not ADDRESS:PORT: .* \(use e\.g\. 127\.0\.0\.1:8025 or \[::1\]:8025\) \(line 8\)$/, listen);
  }
});

test('alert thresholds default to 15m and 1h and take durations', async (t) => {
  const defaults = (await load(t, 'alert:\n  webhook: http://127.0.0.1:9/\n')).config.alert!;
  assert.equal(defaults.upstream_failing_after, 15 * 60_000);
  assert.equal(defaults.queue_age, 3_600_000);
  const set = (await load(t, 'alert:\n  webhook: http://127.0.0.1:9/\n  upstream_failing_after: 5m\n  queue_age: 2h\n')).config.alert!;
  assert.equal(set.upstream_failing_after, 5 * 60_000);
  assert.equal(set.queue_age, 7_200_000);
});

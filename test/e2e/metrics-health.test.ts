import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { MAX_CONNECTIONS } from '../../src/observe/http-server.js';
import { nodemailerClient } from '../support/nodemailer-client.js';
import { pythonSmtplib } from '../support/python-client.js';
import { swaks } from '../support/swaks-client.js';
import { canMount } from '../support/mount.js';
import { CLI } from '../support/cli.js';
import { freePort } from '../support/ports.js';
import { waitUntil } from '../support/wait.js';
import { startRelay, type Relay } from '../support/relay.js';

const exec = promisify(execFile);

/** Prometheus's own Python client parses the exposition: a sample it cannot read fails the test. */
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        out.setdefault(sample.name, []).append([sample.labels, sample.value])
print(json.dumps(out))
`;

type Samples = Record<string, [Record<string, string>, number][]>;

async function parseExposition(text: string): Promise<Samples> {
  const child = execFile('/usr/bin/python3', ['-c', PARSER], { timeout: 20_000 });
  const output = new Promise<string>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`parser exited ${code}: ${stderr}`))));
  });
  child.stdin!.end(text);
  return JSON.parse(await output) as Samples;
}

const value = (samples: Samples, name: string, labels: Record<string, string> = {}): number | undefined =>
  samples[name]?.find(([got]) => Object.entries(labels).every(([key, v]) => got[key] === v))?.[1];

let relay: Relay;
let base: string;
let spoolDir: string;
let mountDir: string;
const mountable = canMount();

before(async () => {
  const port = await freePort();
  relay = await startRelay({
    devices: `  doorphone:
    password: door-secret
    mechanisms: [PLAIN, LOGIN, CRAM-MD5]
    senders: [door@example.net]
    upstream: provider
`,
    settings: `http:\n  listen: 127.0.0.1:${port}\n`,
    prepare: async (dir) => {
      if (!mountable) return;
      spoolDir = join(dir, 'spool');
      mountDir = spoolDir;
      execFileSync('mkdir', ['-p', spoolDir]);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', spoolDir]);
    },
    cleanup: async () => {
      if (mountDir) execFileSync('umount', ['-l', mountDir]);
    },
  });
  base = `http://127.0.0.1:${port}`;
});

after(() => relay?.stop());

const device = (over: Partial<Parameters<typeof pythonSmtplib>[0]> = {}) => ({
  host: '127.0.0.1',
  port: relay.bridge.ports.starttls!,
  security: 'starttls' as const,
  mechanism: 'PLAIN' as const,
  username: 'doorphone',
  password: 'door-secret',
  from: 'door@example.net',
  to: ['owner@example.com'],
  message: 'Subject: ring\r\n\r\nSomeone is at the door.\r\n',
  ...over,
});

test('/metrics counters move after real traffic and parse as Prometheus exposition', async () => {
  const before = await parseExposition(await (await fetch(`${base}/metrics`)).text());
  assert.equal(value(before, 'smtp_bridge_messages_accepted_total', { device: 'doorphone' }), 0);
  assert.equal(value(before, 'smtp_bridge_delivered_total', { upstream: 'provider' }), 0);

  const python = await pythonSmtplib(device({ tlsVersion: 'TLSv1.2' }));
  assert.ok(python.ok, python.transcript);
  const modern = await nodemailerClient(device({ port: relay.bridge.ports.implicit!, security: 'implicit', mechanism: 'CRAM-MD5' }));
  assert.ok(modern.ok, modern.transcript);
  const wrong = await swaks(device({ password: 'not-it', mechanism: 'LOGIN' }));
  assert.equal(wrong.ok, false);
  const sender = await pythonSmtplib(device({ from: 'intruder@example.net' }));
  assert.equal(sender.code, 550, sender.transcript);
  await relay.provider.waitForMessages(2, 10_000);

  const response = await fetch(`${base}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const after = await parseExposition(await response.text());
  assert.equal(value(after, 'smtp_bridge_messages_accepted_total', { device: 'doorphone' }), 2);
  assert.equal(value(after, 'smtp_bridge_delivered_total', { upstream: 'provider' }), 2);
  assert.equal(value(after, 'smtp_bridge_deferred_total', { upstream: 'provider' }), 0);
  // Only the first client was pinned to TLS 1.2; the others negotiate 1.3.
  assert.equal(value(after, 'smtp_bridge_tls_sessions_total', { version: 'TLSv1.2' }), 1);
  assert.equal(value(after, 'smtp_bridge_tls_sessions_total', { version: 'TLSv1.3' }), wrong.skipped ? 2 : 3);
  if (!wrong.skipped) assert.equal(value(after, 'smtp_bridge_auth_failures_total', { device: 'doorphone', reason: 'bad-password' }), 1);
  assert.equal(value(after, 'smtp_bridge_refused_total', { device: 'doorphone', rule: 'senders' }), 1);
  assert.equal(value(after, 'smtp_bridge_delivery_delay_seconds_count', { upstream: 'provider' }), 2);
  assert.equal(value(after, 'smtp_bridge_queue_messages'), 0);
  assert.equal(value(after, 'smtp_bridge_queue_oldest_age_seconds'), 0);
  assert.equal(value(after, 'smtp_bridge_device_frozen', { device: 'doorphone' }), 0);
  assert.equal(value(after, 'smtp_bridge_upstream_up', { upstream: 'provider' }), 1);
  const served = new X509Certificate(await readFile(join(relay.bridge.dir, 'bridge.crt')));
  assert.equal(value(after, 'smtp_bridge_certificate_expiry_timestamp_seconds'), Date.parse(served.validTo) / 1000);
  // The secret never shows: not in the page, not in a label.
  assert.doesNotMatch(JSON.stringify(after), /door-secret|not-it/);
});

test(
  '/healthz is 200 while listeners are up and the spool is writable, 503 with the reason when it is not, and 200 again',
  {
    skip: !mountable && 'mounting a tmpfs needs CAP_SYS_ADMIN',
  },
  async () => {
    const healthy = await fetch(`${base}/healthz`);
    assert.equal(healthy.status, 200);
    assert.equal(await healthy.text(), 'ok\n');
    execFileSync('mount', ['-o', 'remount,ro', spoolDir]);
    try {
      const broken = await fetch(`${base}/healthz`);
      assert.equal(broken.status, 503);
      assert.match(await broken.text(), /spool .* is not writable: EROFS/);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', spoolDir]);
    }
    const back = await fetch(`${base}/healthz`);
    assert.equal(back.status, 200);
  },
);

test('/readyz is 200 while the provider is reachable', async () => {
  const ready = await fetch(`${base}/readyz`);
  assert.equal(ready.status, 200, await ready.clone().text());
});

test('smtp-bridge health asks the endpoint of the config, as the Docker HEALTHCHECK does', async () => {
  const live = await exec(process.execPath, [CLI, 'health', '-c', relay.bridge.file], { timeout: 20_000 });
  assert.equal(live.stdout, '200 ok\n');
  const ready = await exec(process.execPath, [CLI, 'health', '--ready', '-c', relay.bridge.file], { timeout: 20_000 });
  assert.equal(ready.stdout, '200 ok\n');
});

test('the endpoint is read-only and says where to go', async () => {
  assert.equal((await fetch(`${base}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  const missing = await fetch(`${base}/nope`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /\/metrics/);
  assert.equal((await exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/healthz`])).stdout, '200');
});

test('silent peers filling the connection table are cut off, and the endpoint answers again while SMTP never stopped', async () => {
  // curl opens a fresh connection each time, where fetch might reuse a pooled one the table already holds.
  const healthz = () =>
    exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', `${base}/healthz`]).then(
      (out) => out.stdout,
      (err: { stdout?: string }) => err.stdout || '000',
    );
  const silent: net.Socket[] = [];
  try {
    for (let i = 0; i < MAX_CONNECTIONS + 20; i++) {
      const socket = net.connect({ host: '127.0.0.1', port: Number(new URL(base).port) });
      socket.on('error', () => {});
      silent.push(socket);
    }
    await Promise.all(silent.map((socket) => new Promise((resolve) => socket.once('connect', resolve).once('close', resolve))));
    const opened = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await healthz(), '000', 'a connection past the table was served');
    const whileFull = await pythonSmtplib(device());
    assert.ok(whileFull.ok, whileFull.transcript);
    // The held ones are closed once they have sent no request for the request timeout (10 s, checked every 2 s).
    const open = () => silent.filter((socket) => !socket.destroyed && !socket.readableEnded).length;
    await waitUntil(
      () => `the silent connections to be closed; ${open()} still open`,
      () => open() === 0,
      25_000,
      250,
    );
    assert.ok(
      Date.now() - opened >= 9500,
      `the silent connections were let go after ${Date.now() - opened} ms, before the request timeout`,
    );
    assert.equal(await healthz(), '200');
  } finally {
    for (const socket of silent) socket.destroy();
  }
});

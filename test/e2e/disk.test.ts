import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startTestBridge, type TestBridge } from '../support/bridge.js';
import { canMount } from '../support/mount.js';
import { pythonSmtplib } from '../support/python-client.js';
import { makeSelfSigned } from '../support/pki.js';
import { freePort } from '../support/ports.js';
import { spawnBridge } from '../support/process.js';

const mountable = canMount();
const FROM = 'sensor@example.net';

async function smallDiskBridge(): Promise<TestBridge> {
  return startTestBridge({
    yaml: `upstreams:
  capture: { type: directory, path: captured }
devices:
  sensor: { auth: none, networks: [127.0.0.1], senders: [${FROM}], upstream: capture }
`,
    prepare: async (dir) => {
      mkdirSync(join(dir, 'spool'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', join(dir, 'spool')]);
    },
    cleanup: async (dir) => {
      execFileSync('umount', ['-l', join(dir, 'spool')]);
    },
  });
}

const send = (bridge: TestBridge, size: number) =>
  pythonSmtplib({
    host: '127.0.0.1',
    port: bridge.ports.none!,
    security: 'none',
    from: FROM,
    to: ['owner@example.com'],
    message: `Subject: scan\r\n\r\n${'x'.repeat(size)}\r\n`,
  });

const spoolEntries = (bridge: TestBridge) => ['tmp', 'queue'].flatMap((area) => readdirSync(join(bridge.dir, 'spool', area)));

test(
  'a full spool disk: 452 4.3.1, nothing half-written, one error line per condition',
  { skip: !mountable && 'mounting a tmpfs is not permitted here' },
  async () => {
    const bridge = await smallDiskBridge();
    try {
      for (let i = 0; i < 2; i++) {
        const result = await send(bridge, 400_000);
        assert.equal(result.code, 452, result.transcript);
        assert.match(result.transcript, /4\.3\.1 Insufficient system storage/);
        assert.deepEqual(spoolEntries(bridge), []);
      }
      const errors = bridge.logs.filter((l) => l.msg === 'spool not writable');
      assert.equal(errors.length, 1);
      assert.equal(errors[0].code, 'ENOSPC');
      const ok = await send(bridge, 1000);
      assert.equal(ok.code, 250, ok.transcript);
      assert.ok(bridge.logs.some((l) => l.msg === 'spool writable again'));
    } finally {
      await bridge.stop();
    }
  },
);

test(
  'a read-only spool: 452 4.3.1 until it is writable again',
  { skip: !mountable && 'mounting a tmpfs is not permitted here' },
  async () => {
    const bridge = await smallDiskBridge();
    const spool = join(bridge.dir, 'spool');
    try {
      execFileSync('mount', ['-o', 'remount,ro', spool]);
      const refused = await send(bridge, 100);
      assert.equal(refused.code, 452, refused.transcript);
      assert.equal(bridge.logs.find((l) => l.msg === 'spool not writable')?.code, 'EROFS');
      execFileSync('mount', ['-o', 'remount,rw', spool]);
      const ok = await send(bridge, 100);
      assert.equal(ok.code, 250, ok.transcript);
    } finally {
      await bridge.stop();
    }
  },
);

const NOBODY = { uid: 65534, gid: 65534 };
const runningAsRoot = process.getuid?.() === 0;

test(
  'a spool directory the bridge may not write to: 452 4.3.1, logged once as EACCES',
  { skip: !runningAsRoot && 'needs root to run the bridge as another user' },
  async () => {
    // Root writes anywhere, so the bridge runs as nobody and the spool stays root's.
    const dir = mkdtempSync(join(tmpdir(), 'smtp-bridge-eacces-'));
    try {
      chmodSync(dir, 0o755);
      const { certFile, keyFile } = await makeSelfSigned(dir, 'bridge');
      for (const file of [certFile, keyFile]) chownSync(file, NOBODY.uid, NOBODY.gid);
      for (const sub of ['spool/tmp', 'spool/queue', 'spool/failed', 'spool/state/frozen'])
        mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
      const port = await freePort();
      const config = join(dir, 'smtp-bridge.yaml');
      writeFileSync(
        config,
        `listen: [{ port: ${port}, tls: none, address: 127.0.0.1 }]
tls: { cert_file: bridge.crt, key_file: bridge.key }
upstreams: { capture: { type: directory, path: captured } }
devices: { sensor: { auth: none, networks: [127.0.0.1], senders: [${FROM}], upstream: capture } }
`,
      );
      const bridge = await spawnBridge(config, 1, 30_000, NOBODY);
      try {
        for (let i = 0; i < 2; i++) {
          const result = await pythonSmtplib({
            host: '127.0.0.1',
            port,
            security: 'none',
            from: FROM,
            to: ['owner@example.com'],
            message: 'Subject: x\r\n\r\ny\r\n',
          });
          assert.equal(result.code, 452, result.transcript);
        }
        const errors = bridge.logs.filter((l) => l.msg === 'spool not writable');
        assert.equal(errors.length, 1);
        assert.equal(errors[0].code, 'EACCES');
      } finally {
        await bridge.kill('SIGTERM');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, test } from 'node:test';
import type { MessageRecord } from '../../src/message.js';
import { newQueueId, SpoolStore, type SpooledMessage } from '../../src/spool/store.js';
import { syncDirectory } from '../../src/spool/durable-file.js';

const root = mkdtempSync(join(tmpdir(), 'smtp-bridge-spool-'));
after(() => rmSync(root, { recursive: true, force: true }));
let stores = 0;

async function freshStore(): Promise<SpoolStore> {
  const store = new SpoolStore(join(root, `spool-${++stores}`));
  await store.init();
  return store;
}

function record(to: string[] = ['owner@example.com'], messageId?: string): MessageRecord {
  return {
    conn: { device: 'doorphone', clientIp: '192.0.2.7', esmtp: true, tls: 'TLSv1' },
    envelope: {
      originalFrom: 'doorphone@example.net',
      sender: 'doorphone@example.net',
      to,
      upstream: 'provider',
      receivedAt: new Date().toISOString(),
    },
    messageId,
  };
}

const write = (store: SpoolStore, body: Readable, stored = record()): Promise<SpooledMessage> =>
  store.write(newQueueId(), Promise.resolve(stored), body);

const files = (store: SpoolStore, area: string) => readdirSync(join(store.dir, area)).sort();

test('a message is one file: its record line, then the body exactly as given', async () => {
  const store = await freshStore();
  // Bigger than one 64 KB read on both sides: thousands of recipients, a 200 KB body.
  const recipients = Array.from({ length: 3000 }, (_, i) => `user${i}@example.com`);
  const body = `Subject: big\r\n\r\n${'0123456789abcdef\r\n'.repeat(12_000)}`;
  const written = await write(store, Readable.from([Buffer.from(body)]), record(recipients, '<m1@test>'));
  assert.deepEqual(files(store, 'queue'), [`${written.id}.msg`]);
  assert.deepEqual(files(store, 'tmp'), []);
  assert.equal(written.size, body.length);

  const file = readFileSync(store.path('queue', written.id, 'msg'), 'latin1');
  const newline = file.indexOf('\n');
  assert.ok(newline > 64 * 1024);
  assert.equal(file.slice(newline + 1), body);

  const read = await store.read(written.id);
  assert.deepEqual(read, written);
  assert.equal(await text(store.openBody(written.id)), body);
});

test('a record that settles after the body has started still heads the file', async () => {
  const store = await freshStore();
  const stored = record(['late@example.com'], '<late@test>');
  let settle!: (stored: MessageRecord) => void;
  const late = new Promise<MessageRecord>((resolve) => (settle = resolve));
  const writing = store.write(newQueueId(), late, Readable.from(['Subject: late\r\n', '\r\nbody\r\n']));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(files(store, 'queue'), []);
  settle(stored);
  const written = await writing;
  assert.equal(readFileSync(store.path('queue', written.id, 'msg'), 'latin1'), `${JSON.stringify(stored)}\nSubject: late\r\n\r\nbody\r\n`);
  assert.equal(written.messageId, '<late@test>');
});

test('an empty body still gets its record line, and reads back empty', async () => {
  const store = await freshStore();
  const written = await write(store, Readable.from([]));
  assert.equal((await store.read(written.id))?.size, 0);
  assert.equal(await text(store.openBody(written.id)), '');
});

test('a body that breaks off mid-stream leaves no file anywhere', async () => {
  const store = await freshStore();
  const body = new Readable({ read() {} });
  body.push('Subject: half\r\n\r\nsome');
  setImmediate(() => body.destroy(new Error('device went away')));
  await assert.rejects(write(store, body), /device went away/);
  assert.deepEqual(files(store, 'tmp'), []);
  assert.deepEqual(files(store, 'queue'), []);
});

test('state is kept beside the message only once there is some, and travels with it', async () => {
  const store = await freshStore();
  const message = await write(store, Readable.from(['Subject: x\r\n\r\nbody\r\n']));
  assert.equal(existsSync(store.path('queue', message.id, 'state')), false);

  message.state.attempts = 1;
  message.state.lastError = '451 4.3.0 try later';
  assert.equal(await store.saveState(message), true);
  assert.deepEqual((await store.read(message.id))?.state, message.state);

  message.state.failedAt = new Date().toISOString();
  message.state.reason = 'refused';
  await store.move(message, 'queue', 'failed');
  assert.deepEqual(files(store, 'queue'), []);
  assert.deepEqual(files(store, 'failed'), [`${message.id}.msg`, `${message.id}.state`]);
  assert.equal((await store.read(message.id, 'failed'))?.state.reason, 'refused');
  assert.equal(await text(store.openBody(message.id, 'failed')), 'Subject: x\r\n\r\nbody\r\n');

  await store.remove(message.id, 'failed');
  assert.deepEqual(files(store, 'failed'), []);
  assert.equal(await store.saveState(message), false, 'a deleted message gets no state file');
  assert.deepEqual(files(store, 'queue'), []);
});

test('the delivery lock is exclusive, and lets the message go when removed', async () => {
  const store = await freshStore();
  const { id } = await write(store, Readable.from(['Subject: x\r\n\r\n']));
  assert.equal(store.lock(id), true);
  assert.equal(store.lock(id), false);
  assert.equal(store.isLocked(id), true);
  await store.remove(id);
  store.unlock(id);
  assert.equal(store.isLocked(id), false);
  assert.deepEqual(files(store, 'queue'), []);
  assert.equal(store.lock(id), false, 'no lock on a message that is gone');
});

test('sweep removes crash debris and keeps every complete message', async () => {
  const store = await freshStore();
  const kept = await write(store, Readable.from(['Subject: keep\r\n\r\n']));
  await store.saveState(kept);
  writeFileSync(join(store.dir, 'tmp', '0MWTDR5URC7569456D0.msg'), 'half');
  writeFileSync(store.path('queue', '0MWTDR5URC7569456D1', 'state'), '{}');
  writeFileSync(store.path('queue', kept.id, 'lock'), '');
  writeFileSync(join(store.dir, 'queue', `.${kept.id}.state.0a1b2c3d.tmp`), '{');
  await store.sweep();
  assert.deepEqual(files(store, 'tmp'), []);
  assert.deepEqual(files(store, 'queue'), [`${kept.id}.msg`, `${kept.id}.state`]);
  assert.deepEqual(await store.ids(), [kept.id]);
});

test('directory fsyncs are shared: callers during a running fsync all wait for the same next one', async () => {
  const dir = mkdtempSync(join(root, 'dir-'));
  const calls = Array.from({ length: 10 }, () => syncDirectory(dir));
  assert.equal(new Set(calls).size, 2);
  await Promise.all(calls);
  const later = syncDirectory(dir);
  assert.equal(calls.includes(later), false);
  await later;
  await assert.rejects(syncDirectory(join(dir, 'missing')), { code: 'ENOENT' });
});

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { Cleanup } from '../../src/cleanup/cleanup.js';
import { displayNameOf, withDisplayName } from '../../src/cleanup/from-header.js';
import { receivedHeader } from '../../src/cleanup/received.js';
import type { Arrival, MessageRecord } from '../../src/message.js';

const DATE = new Date('2026-11-23T12:53:25Z');
const ID = '0MWT9O445323FCD6A11';

const cleanup = new Cleanup({
  hostname: 'bridge.lan',
  upstreams: {
    isp: {
      type: 'smtp',
      host: 'smtp.isp.example',
      tls: 'implicit',
      min_version: 'TLSv1.2',
      connect_timeout: 1,
      concurrency: 1,
      idle_timeout: 1,
      auth: { user: 'account@isp.example', password: 'x', mechanism: 'PLAIN' },
    },
  },
  devices: {
    doorphone: { upstream: 'isp', rewrite_sender: false, rewrite_from: false },
    rewriting: { upstream: 'isp', rewrite_sender: true, rewrite_from: true },
    fixed: { upstream: 'isp', rewrite_sender: 'alerts@example.com', rewrite_from: 'alerts@example.com' },
  } as never,
});

const arrival = (device = 'doorphone'): Arrival => ({
  conn: {
    device,
    helo: 'vl-swh705',
    esmtp: true,
    clientIp: '192.168.1.40',
    tls: 'TLSv1',
    cipher: 'ECDHE-RSA-AES256-SHA',
    saslMethod: 'CRAM-MD5',
  },
  envelope: { originalFrom: 'cam@door.lan', to: ['owner@example.com'], upstream: 'isp', receivedAt: DATE.toISOString() },
});

const RECEIVED =
  'Received: from vl-swh705 ([192.168.1.40])\r\n' +
  '\tby bridge.lan (smtp-bridge) with ESMTPSA (TLSv1 with cipher ECDHE-RSA-AES256-SHA)\r\n' +
  `\tid ${ID} (device doorphone, authenticated with CRAM-MD5);\r\n` +
  '\tMon, 23 Nov 2026 12:53:25 +0000\r\n';

/** Runs cleanup into a queue writer that keeps the record and the cleaned body in memory. */
async function clean(
  message: string | string[],
  device = 'doorphone',
): Promise<{ out: string; messageId?: string; record: MessageRecord }> {
  const body = Readable.from((Array.isArray(message) ? message : [message]).map((part) => Buffer.from(part, 'latin1')));
  return cleanup.enqueue(ID, arrival(device), body, {
    async write(_id, record, cleaned) {
      const out = (await buffer(cleaned)).toString('latin1');
      const settled = await record;
      return { out, messageId: settled.messageId, record: settled };
    },
  });
}

test('Received: is prepended; a message with Date and Message-ID is otherwise untouched, byte for byte', async () => {
  const message =
    'From: Doorphone <cam@door.lan>\r\nDate: Sun, 1 Jan 2012 00:00:00 +0900\r\nMessage-ID: <own@door.lan>\r\nSubject: =?ISO-2022-JP?B?GyRCJUEbKEI=?=\r\n\r\nbody \xe9\xff\r\n.. dots\r\n';
  const { out, messageId } = await clean(message);
  assert.equal(out, RECEIVED + message);
  assert.equal(messageId, '<own@door.lan>');
});

test("missing Date and Message-ID are added after Received:, in the bridge's own forms", async () => {
  const { out, messageId } = await clean('Subject: rang\r\n\r\nDing.\r\n');
  assert.equal(out, `${RECEIVED}Date: Mon, 23 Nov 2026 12:53:25 +0000\r\nMessage-ID: <${ID}@bridge.lan>\r\nSubject: rang\r\n\r\nDing.\r\n`);
  assert.equal(messageId, `<${ID}@bridge.lan>`);
});

test('header-only, empty, bare-LF and chunk-split messages', async () => {
  const added = `${RECEIVED}Date: Mon, 23 Nov 2026 12:53:25 +0000\r\nMessage-ID: <${ID}@bridge.lan>\r\n`;
  assert.equal((await clean('Subject: only headers\r\n')).out, `${added}Subject: only headers\r\n`);
  assert.equal((await clean('')).out, added);
  assert.equal((await clean('\r\nno headers at all\r\n')).out, `${added}\r\nno headers at all\r\n`);
  assert.equal((await clean('Subject: lf\nX: y\n\nbody\n')).out, `${added}Subject: lf\r\nX: y\r\n\r\nbody\r\n`);
  assert.equal((await clean(['Subj', 'ect: split\r', '\n\r', '\nbo', 'dy\r\n'])).out, `${added}Subject: split\r\n\r\nbody\r\n`);
});

test('a folded Message-ID is recognised and kept as it was', async () => {
  const message = 'Message-ID:\r\n <folded@door.lan>\r\nDate: Sun, 1 Jan 2012 00:00:00 +0000\r\n\r\nx\r\n';
  const { out, messageId } = await clean(message);
  assert.equal(out, RECEIVED + message);
  assert.equal(messageId, '<folded@door.lan>');
});

test('rewrite_from keeps the display name, quoting it when it needs quotes; the envelope sender follows rewrite_sender', async () => {
  const head = 'Date: Sun, 1 Jan 2012 00:00:00 +0000\r\nMessage-ID: <a@b>\r\n';
  const cases: [string, string][] = [
    ['Doorphone <cam@door.lan>', 'Doorphone <account@isp.example>'],
    ['"Front door" <cam@door.lan>', 'Front door <account@isp.example>'],
    ['"cam@door.lan" <cam@door.lan>', '"cam@door.lan" <account@isp.example>'],
    ['"Door, \\"front\\"" <cam@door.lan>', '"Door, \\"front\\"" <account@isp.example>'],
    ['cam@door.lan (Doorphone)', 'Doorphone <account@isp.example>'],
    ['cam@door.lan', '<account@isp.example>'],
    ['=?UTF-8?B?44OJ44Ki44Ob44Oz?= <cam@door.lan>', '=?UTF-8?B?44OJ44Ki44Ob44Oz?= <account@isp.example>'],
  ];
  for (const [from, expected] of cases) {
    const { out } = await clean(`${head}From: ${from}\r\nSubject: x\r\n\r\nbody\r\n`, 'rewriting');
    assert.equal(out.slice(out.indexOf(head)), `${head}From: ${expected}\r\nSubject: x\r\n\r\nbody\r\n`, from);
  }
  const senders = async (device: string) => (await clean(`${head}\r\nx\r\n`, device)).record.envelope;
  assert.deepEqual(await senders('rewriting'), { ...arrival().envelope, sender: 'account@isp.example' });
  assert.deepEqual(await senders('fixed'), { ...arrival().envelope, sender: 'alerts@example.com' });
  assert.deepEqual(await senders('doorphone'), { ...arrival().envelope, sender: 'cam@door.lan' });
  const fixed = await clean(`${head}From: Door <cam@door.lan>\r\n\r\nx\r\n`, 'fixed');
  assert.match(fixed.out, /\r\nFrom: Door <alerts@example\.com>\r\n/);
});

test('display names parse and quote per RFC 5322', () => {
  assert.equal(displayNameOf(' "A \\"B\\"" <x@y>'), 'A "B"');
  assert.equal(displayNameOf(' <x@y>'), '');
  assert.equal(withDisplayName('a@b', 'x@y'), '"a@b" <x@y>');
  assert.equal(withDisplayName('Plain Name', 'x@y'), 'Plain Name <x@y>');
});

test('Received: for HELO without TLS or AUTH, and for an IPv6 client', () => {
  const line = receivedHeader({ esmtp: false, clientIp: 'fd00::7', hostname: 'bridge.lan', device: 'printer', queueId: ID, date: DATE });
  assert.equal(
    line,
    `Received: from unknown ([IPv6:fd00::7])\r\n\tby bridge.lan (smtp-bridge) with SMTP\r\n\tid ${ID} (device printer);\r\n\tMon, 23 Nov 2026 12:53:25 +0000`,
  );
});

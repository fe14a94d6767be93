import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { CrlfNormalizer } from '../src/spool/crlf.js';
import { HeaderScanner } from '../src/spool/headers.js';

const normalize = (chunks: string[]) => buffer(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new CrlfNormalizer()));

test('bare LF becomes CRLF; CRLF stays, also when split across chunks', async () => {
  assert.equal((await normalize(['a\nb\r\nc\n'])).toString(), 'a\r\nb\r\nc\r\n');
  assert.equal((await normalize(['a\r', '\nb'])).toString(), 'a\r\nb');
  assert.equal((await normalize(['a', '\nb'])).toString(), 'a\r\nb');
  assert.equal((await normalize(['\n', '\n', '\r\n'])).toString(), '\r\n\r\n\r\n');
  assert.equal((await normalize(['lone\rcr'])).toString(), 'lone\rcr');
});

test('bytes other than line ends pass untouched', async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x0a));
  assert.deepEqual(await buffer(Readable.from([all]).pipe(new CrlfNormalizer())), all);
});

test('the header scanner finds a folded Message-ID and leaves the bytes alone', async () => {
  const message = 'From: a@b\r\nMessage-Id:\r\n <123@host>\r\nSubject: x\r\n\r\nMessage-ID: <body@fake>\r\n';
  const scanner = new HeaderScanner();
  const out = await buffer(Readable.from([Buffer.from(message.slice(0, 7)), Buffer.from(message.slice(7))]).pipe(scanner));
  assert.equal(out.toString(), message);
  assert.equal(scanner.messageId, '<123@host>');
  const none = new HeaderScanner();
  await buffer(Readable.from([Buffer.from('Subject: x\r\n\r\nMessage-ID: <body@fake>\r\n')]).pipe(none));
  assert.equal(none.messageId, undefined);
});

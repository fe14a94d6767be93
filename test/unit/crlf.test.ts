import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { CrlfNormalizer } from '../../src/cleanup/crlf.js';

const normalize = (chunks: string[]) => buffer(Readable.from(chunks.map((c) => Buffer.from(c, 'latin1'))).pipe(new CrlfNormalizer()));

test('bare LF and bare CR become CRLF; CRLF stays, also when split across chunks', async () => {
  assert.equal((await normalize(['a\nb\r\nc\n'])).toString(), 'a\r\nb\r\nc\r\n');
  assert.equal((await normalize(['a\r', '\nb'])).toString(), 'a\r\nb');
  assert.equal((await normalize(['a', '\nb'])).toString(), 'a\r\nb');
  assert.equal((await normalize(['\n', '\n', '\r\n'])).toString(), '\r\n\r\n\r\n');
  assert.equal((await normalize(['lone\rcr'])).toString(), 'lone\r\ncr');
  assert.equal((await normalize(['a\r', 'b\r'])).toString(), 'a\r\nb\r\n');
  assert.equal((await normalize(['x\r.\r\n'])).toString(), 'x\r\n.\r\n');
});

test('bytes other than line ends pass untouched', async () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x0a && b !== 0x0d));
  assert.deepEqual(await buffer(Readable.from([all]).pipe(new CrlfNormalizer())), all);
});

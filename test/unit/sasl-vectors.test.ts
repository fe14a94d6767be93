import assert from 'node:assert/strict';
import { test } from 'node:test';
import { passwordCredential } from '../../src/auth/credentials.js';
import { deviceFrom } from '../support/device.js';
import { saslVectors as vectors } from '../support/vectors.js';

const verifyCramMd5 = (password: string, challenge: string, response: string) =>
  deviceFrom({ password, mechanisms: ['CRAM-MD5'] }).verify({ mechanism: 'CRAM-MD5', username: 'device', challenge, response });

test('CRAM-MD5 reproduces every shared vector', async () => {
  assert.ok(vectors.cram_md5.length > 0);
  for (const v of vectors.cram_md5) {
    assert.equal(Buffer.from(v.challenge_base64, 'base64').toString(), v.challenge);
    assert.equal(passwordCredential(v.password).cramMd5Digest?.(v.challenge), v.expected_digest_hex);
    const [username, digest] = Buffer.from(v.expected_response_base64, 'base64').toString().split(' ');
    assert.equal(username, v.username);
    assert.ok(await verifyCramMd5(v.password, v.challenge, digest));
  }
});

test('CRAM-MD5 accepts the sloppy trailing newline of `echo | base64` scripts, and nothing else', async () => {
  const [v] = vectors.cram_md5;
  assert.ok(await verifyCramMd5(v.password, v.challenge, `${v.expected_digest_hex}\n`));
  assert.ok(await verifyCramMd5(v.password, v.challenge, `${v.expected_digest_hex.toUpperCase()} \r\n`));
  assert.equal(await verifyCramMd5('wrong', v.challenge, v.expected_digest_hex), false);
  assert.equal(await verifyCramMd5(v.password, `${v.challenge}x`, v.expected_digest_hex), false);
  assert.equal(await verifyCramMd5(v.password, v.challenge, ''), false);
});

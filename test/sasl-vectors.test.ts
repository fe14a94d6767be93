import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cramMd5Digest, verifyCramMd5 } from '../src/policy/credentials.js';

interface CramVector {
  username: string;
  password: string;
  challenge_base64: string;
  challenge: string;
  expected_digest_hex: string;
  expected_response_base64: string;
}

const vectors = JSON.parse(readFileSync(new URL('../../../shared/vectors/sasl-vectors.json', import.meta.url), 'utf8')) as {
  cram_md5: CramVector[];
};

test('CRAM-MD5 reproduces every shared vector', () => {
  assert.ok(vectors.cram_md5.length > 0);
  for (const v of vectors.cram_md5) {
    assert.equal(Buffer.from(v.challenge_base64, 'base64').toString(), v.challenge);
    assert.equal(cramMd5Digest(v.password, v.challenge), v.expected_digest_hex);
    const [username, digest] = Buffer.from(v.expected_response_base64, 'base64').toString().split(' ');
    assert.equal(username, v.username);
    assert.ok(verifyCramMd5(v.password, v.challenge, digest));
  }
});

test('CRAM-MD5 accepts the sloppy trailing newline of `echo | base64` scripts, and nothing else', () => {
  const [v] = vectors.cram_md5;
  assert.ok(verifyCramMd5(v.password, v.challenge, `${v.expected_digest_hex}\n`));
  assert.ok(verifyCramMd5(v.password, v.challenge, `${v.expected_digest_hex.toUpperCase()} \r\n`));
  assert.equal(verifyCramMd5('wrong', v.challenge, v.expected_digest_hex), false);
  assert.equal(verifyCramMd5(v.password, `${v.challenge}x`, v.expected_digest_hex), false);
  assert.equal(verifyCramMd5(v.password, v.challenge, ''), false);
});

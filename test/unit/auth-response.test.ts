import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cramMd5Answer, digestMd5Answer } from '../../src/auth/client-response.js';
import { digestMd5Challenge } from '../../src/auth/digest-md5-math.js';
import { saslVectors as vectors } from '../support/vectors.js';

test('auth-response reproduces every CRAM-MD5 vector', () => {
  assert.ok(vectors.cram_md5.length > 0);
  for (const v of vectors.cram_md5) {
    const answer = cramMd5Answer(v.username, v.password, v.challenge_base64);
    assert.equal(answer.response, v.expected_response_base64);
    assert.deepEqual(Object.fromEntries(answer.working), {
      challenge: v.challenge,
      digest: v.expected_digest_hex,
      response: `${v.username} ${v.expected_digest_hex}`,
    });
  }
});

test('auth-response reproduces every DIGEST-MD5 vector, with its rspauth', () => {
  assert.ok(vectors.digest_md5.length > 0);
  for (const v of vectors.digest_md5) {
    const challenge = Buffer.from(digestMd5Challenge(v.realm, v.nonce)).toString('base64');
    const answer = digestMd5Answer(v.username, v.password, challenge, { cnonce: v.cnonce, digestUri: v.digest_uri });
    assert.equal(answer.response, v.client_response_base64);
    assert.equal(answer.rspauth, v.expected_rspauth);
    assert.equal(Object.fromEntries(answer.working)['H(user:realm:pass)'], v.expected_h_user_realm_pass_hex);
  }
});

test('auth-response picks a fresh cnonce and defaults the digest-uri to smtp/REALM', () => {
  const challenge = Buffer.from(digestMd5Challenge('bridge.test', 'abc')).toString('base64');
  const first = Buffer.from(digestMd5Answer('u', 'p', challenge).response, 'base64').toString();
  const second = Buffer.from(digestMd5Answer('u', 'p', challenge).response, 'base64').toString();
  assert.match(first, /digest-uri="smtp\/bridge.test"/);
  assert.notEqual(/cnonce="([^"]+)"/.exec(first)?.[1], /cnonce="([^"]+)"/.exec(second)?.[1]);
});

test('auth-response refuses a challenge that is not DIGEST-MD5', () => {
  assert.throws(() => digestMd5Answer('u', 'p', Buffer.from('PDEyMz4=').toString('base64')), /no nonce/);
});

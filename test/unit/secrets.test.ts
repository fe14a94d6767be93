import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { formatStoredSecret, parseStoredSecret, type StoredSecret } from '../../src/auth/stored-secret.js';
import { passwordCredential, storedCredential } from '../../src/auth/credentials.js';
import { digestMd5ClientResponse, userRealmPasswordHash, type DigestMd5Response } from '../../src/auth/digest-md5-math.js';
import { hashSecret, schemesFor } from '../../src/auth/hash-secret.js';
import { hmacMd5Pads, hmacMd5WithPads, padsFromBytes, padsToBytes } from '../../src/auth/md5-state.js';
import { deviceFrom } from '../support/device.js';
import { saslVectors as vectors } from '../support/vectors.js';

const [cram] = vectors.cram_md5;
const [digest] = vectors.digest_md5;

/**
 * Printed by Dovecot 2.3.19's own `doveadm pw -s CRAM-MD5 -p ...` and
 * `doveadm pw -s DIGEST-MD5 -u user@realm -p ...`: the bridge's stored forms
 * must be byte-for-byte what an operator migrating from Dovecot already has.
 */
const DOVECOT = {
  cram: { password: 'himitsunokotoba', secret: '{CRAM-MD5}1b16a7d2dc59efa12a7dfbedd1bbb9ae14c8b69d1be8fbb5a6694368054c3957' },
  /** A key longer than MD5's 64-byte block is hashed first (RFC 2104). */
  cramLongKey: { password: 'x'.repeat(100), secret: '{CRAM-MD5}52197db948d0932512a61b183e7d05b04e94d60a3bb0d00f92d3df52a5d275ca' },
  digest: { secret: '{DIGEST-MD5}0e50b2e5e12c4b08c865045a4bb780d1' },
};

const parsed = (text: string): StoredSecret => {
  const form = parseStoredSecret(text);
  assert.ok(typeof form !== 'string', `${text}: ${String(form)}`);
  return form;
};

test('HMAC-MD5 resumed from saved pad states equals node HMAC-MD5, for every key and message length around the block size', () => {
  for (const keyLength of [0, 1, 55, 56, 63, 64, 65, 100, 200]) {
    const key = randomBytes(keyLength);
    const pads = padsFromBytes(padsToBytes(hmacMd5Pads(key)));
    for (let messageLength = 0; messageLength <= 200; messageLength += 7) {
      const message = randomBytes(messageLength);
      assert.deepEqual(
        hmacMd5WithPads(pads, message),
        createHmac('md5', key).update(message).digest(),
        `key ${keyLength}, message ${messageLength}`,
      );
    }
  }
});

test('the {CRAM-MD5} form is what Dovecot stores, and answers the shared CRAM-MD5 vector without the password', async () => {
  for (const { password, secret } of [DOVECOT.cram, DOVECOT.cramLongKey]) {
    assert.equal(formatStoredSecret(await hashSecret(password, 'CRAM-MD5')), secret);
  }
  const stored = storedCredential([parsed(DOVECOT.cram.secret)]);
  assert.equal(cram.password, DOVECOT.cram.password);
  assert.equal(stored.cramMd5Digest?.(cram.challenge), cram.expected_digest_hex);
  assert.equal(stored.verifyPassword, undefined, 'a CRAM-MD5 form cannot check a PLAIN password');
  assert.equal(stored.digestMd5Ha1, undefined);
});

test('the {DIGEST-MD5} form is H(user:realm:password) of the shared vector, as Dovecot stores it', async () => {
  const made = await hashSecret(digest.password, 'DIGEST-MD5', { username: digest.username, realm: digest.realm });
  assert.equal(formatStoredSecret(made), DOVECOT.digest.secret);
  assert.equal(DOVECOT.digest.secret.slice('{DIGEST-MD5}'.length), digest.expected_h_user_realm_pass_hex);
  const stored = storedCredential([parsed(DOVECOT.digest.secret)]);
  assert.equal(stored.digestMd5Ha1?.(digest.username, digest.realm).toString('hex'), digest.expected_h_user_realm_pass_hex);
  assert.equal(
    passwordCredential(digest.password).digestMd5Ha1?.(digest.username, digest.realm).toString('hex'),
    digest.expected_h_user_realm_pass_hex,
  );
  assert.equal(stored.verifyPassword, undefined);
  assert.equal(stored.cramMd5Digest, undefined);
  await assert.rejects(hashSecret('pw', 'DIGEST-MD5'), /needs the username and realm/);
});

test('the {SCRYPT} form checks PLAIN/LOGIN passwords and nothing else, and survives formatting', async () => {
  const made = await hashSecret('door-secret', 'SCRYPT');
  const text = formatStoredSecret(made);
  assert.match(text, /^\{SCRYPT\}ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.deepEqual(parsed(text), made);
  const stored = storedCredential([parsed(text)]);
  assert.equal(await stored.verifyPassword?.('door-secret'), true);
  assert.equal(await stored.verifyPassword?.('door-secret '), false);
  assert.equal(await stored.verifyPassword?.(''), false);
  assert.equal(stored.cramMd5Digest, undefined);
  assert.equal(stored.digestMd5Ha1, undefined);
  assert.notEqual(formatStoredSecret(await hashSecret('door-secret', 'SCRYPT')), text, 'every hash gets its own salt');
});

test('hash-secret picks the forms a device mechanism list needs', () => {
  assert.deepEqual(schemesFor(['PLAIN', 'LOGIN']), ['SCRYPT']);
  assert.deepEqual(schemesFor(['CRAM-MD5']), ['CRAM-MD5']);
  assert.deepEqual(schemesFor(['LOGIN', 'DIGEST-MD5', 'CRAM-MD5']), ['SCRYPT', 'CRAM-MD5', 'DIGEST-MD5']);
});

test('malformed stored secrets are refused with a reason that never repeats the value', () => {
  for (const [text, reason] of [
    ['door-secret', /not a stored secret/],
    ['{MD5}5f4dcc3b5aa765d61d8327deb882cf99', /unknown scheme \{MD5\}/],
    ['{CRAM-MD5}1b16a7d2', /64 hex digits/],
    ['{DIGEST-MD5}zz50b2e5e12c4b08c865045a4bb780d1', /32 hex digits/],
    ['{SCRYPT}ln=14,r=8$c2FsdHNhbHQ$aGFzaA', /ln=N,r=N,p=N\$SALT\$HASH/],
    ['{SCRYPT}ln=30,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA', /out of range/],
    ['{SCRYPT}ln=14,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA', /salt must be at least 8 bytes/],
  ] as const) {
    const result = parseStoredSecret(text);
    assert.equal(typeof result, 'string', text);
    assert.match(result as string, reason);
    assert.ok(!(result as string).includes(text.slice(text.indexOf('}') + 1) || 'door-secret'), `${text} echoed in "${result}"`);
  }
});

/** Every mechanism a device could attempt, with the right password, against a device holding `secret`. */
async function mechanismsThatWork(secret: string[] | undefined, password: string): Promise<string[]> {
  const mechanisms = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5'];
  const username = digest.username;
  const device = deviceFrom(secret ? { username, secret, mechanisms: secretMechanisms(secret) } : { username, password, mechanisms });
  const challenge = '<1896.697170952@bridge.test>';
  const fields = {
    username,
    realm: digest.realm,
    nonce: digest.nonce,
    cnonce: digest.cnonce,
    nc: digest.nc,
    qop: digest.qop,
    digestUri: digest.digest_uri,
  };
  // What a DIGEST-MD5 client knowing `password` answers; for the vector's password, the vector's response.
  const response: DigestMd5Response = {
    ...fields,
    response: digestMd5ClientResponse(userRealmPasswordHash(username, digest.realm, password), { ...fields, response: '' }),
  };
  if (password === digest.password) assert.equal(response.response, digest.expected_response);
  const works: string[] = [];
  for (const mechanism of mechanisms) {
    const ok = await device.verify(
      mechanism === 'CRAM-MD5'
        ? { mechanism, username, challenge, response: createHmac('md5', password).update(challenge).digest('hex') }
        : mechanism === 'DIGEST-MD5'
          ? { mechanism, username, digest: response }
          : { mechanism: mechanism as 'PLAIN' | 'LOGIN', username, password },
    );
    if (ok) works.push(mechanism);
  }
  return works;
}

/** The mechanisms a set of forms serves, so the config check lets the device through. */
function secretMechanisms(secret: string[]): string[] {
  return secret.flatMap(
    (text) => ({ SCRYPT: ['PLAIN', 'LOGIN'], 'CRAM-MD5': ['CRAM-MD5'], 'DIGEST-MD5': ['DIGEST-MD5'] })[parsed(text).scheme],
  );
}

test('every secret form authenticates exactly the mechanisms it should (shared vectors), a plaintext password all of them', async () => {
  const password = digest.password;
  const scrypt = formatStoredSecret(await hashSecret(password, 'SCRYPT'));
  const cramForm = formatStoredSecret(await hashSecret(password, 'CRAM-MD5'));
  const digestForm = formatStoredSecret(await hashSecret(password, 'DIGEST-MD5', { username: digest.username, realm: digest.realm }));
  assert.deepEqual(await mechanismsThatWork(undefined, password), ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5']);
  assert.deepEqual(await mechanismsThatWork([scrypt], password), ['PLAIN', 'LOGIN']);
  assert.deepEqual(await mechanismsThatWork([cramForm], password), ['CRAM-MD5']);
  assert.deepEqual(await mechanismsThatWork([digestForm], password), ['DIGEST-MD5']);
  assert.deepEqual(await mechanismsThatWork([scrypt, cramForm, digestForm], password), ['PLAIN', 'LOGIN', 'CRAM-MD5', 'DIGEST-MD5']);
  assert.deepEqual(await mechanismsThatWork([scrypt, cramForm, digestForm], 'wrong password'), []);
});

import { createHash, createHmac, scrypt, timingSafeEqual } from 'node:crypto';
import type { Device } from '../config/schema.js';
import { SCRYPT_MAX_MEMORY, type StoredSecret } from './stored-secret.js';
import { userRealmPasswordHash } from './digest-md5-math.js';
import { hmacMd5WithPads, padsFromBytes } from './md5-state.js';

/**
 * What the bridge holds to check a device's AUTH, one method per kind of
 * proof. A plaintext password can do all of them; a stored secret only what
 * its forms can (see config/stored-secret.ts), so a mechanism whose method is
 * missing cannot succeed for that device.
 */
export interface Credential {
  /** PLAIN and LOGIN: is this the password? */
  verifyPassword?(password: string): Promise<boolean>;
  /** CRAM-MD5 (RFC 2195): hex HMAC-MD5 of the challenge, keyed with the password. */
  cramMd5Digest?(challenge: string): string;
  /**
   * DIGEST-MD5 (RFC 2831): the binary MD5 of `username:realm:password`, which
   * A1 starts with. A stored form was made for one username and realm and
   * returns its hash whatever is asked; a wrong realm simply fails to verify.
   */
  digestMd5Ha1?(username: string, realm: string): Buffer;
}

/** Compares secrets in constant time; hashing first makes the lengths equal. */
export function secretsEqual(a: string | Buffer, b: string | Buffer): boolean {
  const digest = (value: string | Buffer) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** The credential of a device with `password` (or password_env/password_file) or `secret`; none for `auth: none`. */
export function credentialFor(device: Device): Credential | undefined {
  if (device.password !== undefined) return passwordCredential(device.password);
  if (device.secret !== undefined) return storedCredential(device.secret);
  return undefined;
}

export function passwordCredential(password: string): Credential {
  return {
    verifyPassword: async (candidate) => secretsEqual(password, candidate),
    cramMd5Digest: (challenge) => createHmac('md5', password).update(challenge, 'utf8').digest('hex'),
    digestMd5Ha1: (username, realm) => userRealmPasswordHash(username, realm, password),
  };
}

export function storedCredential(forms: readonly StoredSecret[]): Credential {
  const credential: Credential = {};
  for (const form of forms) {
    switch (form.scheme) {
      case 'SCRYPT':
        credential.verifyPassword = (candidate) => verifyScrypt(form, candidate);
        break;
      case 'CRAM-MD5': {
        const pads = padsFromBytes(form.pads);
        credential.cramMd5Digest = (challenge) => hmacMd5WithPads(pads, Buffer.from(challenge, 'utf8')).toString('hex');
        break;
      }
      case 'DIGEST-MD5':
        credential.digestMd5Ha1 = () => Buffer.from(form.userRealmPassword);
        break;
    }
  }
  return credential;
}

type ScryptForm = Extract<StoredSecret, { scheme: 'SCRYPT' }>;

/** Derives the scrypt hash of `password` with the form's parameters and salt; async, so AUTH never blocks the event loop. */
export function scryptHash(password: string, form: Omit<ScryptForm, 'scheme' | 'hash'>, length: number): Promise<Buffer> {
  const options = { N: 2 ** form.cost, r: form.blockSize, p: form.parallelism, maxmem: SCRYPT_MAX_MEMORY + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password, form.salt, length, options, (err, hash) => (err ? reject(err) : resolve(hash))));
}

async function verifyScrypt(form: ScryptForm, candidate: string): Promise<boolean> {
  return timingSafeEqual(await scryptHash(candidate, form, form.hash.length), form.hash);
}

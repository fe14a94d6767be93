import { randomBytes } from 'node:crypto';
import { SCHEME_MECHANISMS, type StoredScheme, type StoredSecret } from './stored-secret.js';
import { scryptHash } from './credentials.js';
import { userRealmPasswordHash } from './digest-md5-math.js';
import { hmacMd5Pads, padsToBytes } from './md5-state.js';

/**
 * scrypt cost for new PLAIN/LOGIN secrets: N = 2^14, r = 8 (16 MiB, some
 * 30-50 ms per check). Interactive-login strength, yet cheap enough for a
 * device that authenticates for every message. Stored in the form, so it can
 * be raised later without breaking older secrets.
 */
const SCRYPT_COST = { cost: 14, blockSize: 8, parallelism: 1 };

/** Who a DIGEST-MD5 form is made for: the hash covers both. */
export interface DigestIdentity {
  username: string;
  realm: string;
}

/** The stored schemes that together serve every one of `mechanisms`. */
export function schemesFor(mechanisms: readonly string[]): StoredScheme[] {
  return (Object.keys(SCHEME_MECHANISMS) as StoredScheme[]).filter((scheme) =>
    SCHEME_MECHANISMS[scheme].some((m) => mechanisms.includes(m)),
  );
}

/** Makes one stored form of `password`; DIGEST-MD5 needs the identity it will be used with. */
export async function hashSecret(password: string, scheme: StoredScheme, identity?: DigestIdentity): Promise<StoredSecret> {
  switch (scheme) {
    case 'SCRYPT': {
      const salt = randomBytes(16);
      return { scheme, ...SCRYPT_COST, salt, hash: await scryptHash(password, { ...SCRYPT_COST, salt }, 32) };
    }
    case 'CRAM-MD5':
      return { scheme, pads: padsToBytes(hmacMd5Pads(Buffer.from(password, 'utf8'))) };
    case 'DIGEST-MD5': {
      if (!identity) throw new Error('a DIGEST-MD5 secret needs the username and realm it is for');
      return { scheme, userRealmPassword: userRealmPasswordHash(identity.username, identity.realm, password) };
    }
  }
}

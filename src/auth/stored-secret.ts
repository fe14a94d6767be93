/**
 * The text form of a device's stored secret (`secret:` in the config, made by
 * `smtp-bridge hash-secret`). Each form is a scheme in braces, Dovecot style,
 * then the scheme's data; each serves only the mechanisms it can:
 *
 *   {SCRYPT}ln=14,r=8,p=1$SALT$HASH   PLAIN, LOGIN   (scrypt; SALT and HASH unpadded base64)
 *   {CRAM-MD5}64 hex digits           CRAM-MD5       (HMAC-MD5 outer and inner pad state, as Dovecot's CRAM-MD5 scheme)
 *   {DIGEST-MD5}32 hex digits         DIGEST-MD5     (MD5 of username:realm:password, as Dovecot's DIGEST-MD5 scheme)
 */

export type StoredSecret =
  | { scheme: 'SCRYPT'; cost: number; blockSize: number; parallelism: number; salt: Buffer; hash: Buffer }
  | { scheme: 'CRAM-MD5'; pads: Buffer }
  | { scheme: 'DIGEST-MD5'; userRealmPassword: Buffer };

export type StoredScheme = StoredSecret['scheme'];

/** What each stored form can verify. Only a plaintext password serves every mechanism. */
export const SCHEME_MECHANISMS: Record<StoredScheme, readonly string[]> = {
  SCRYPT: ['PLAIN', 'LOGIN'],
  'CRAM-MD5': ['CRAM-MD5'],
  'DIGEST-MD5': ['DIGEST-MD5'],
};

/** scrypt's memory is 128 * N * r bytes: a hand-edited form must not exhaust the bridge's memory. */
export const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024;

const SCRYPT_FORM = /^ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** The parsed form, or a message saying what is wrong with it. */
export function parseStoredSecret(text: string): StoredSecret | string {
  const match = /^\{([A-Z0-9-]+)\}(.*)$/.exec(text.trim());
  if (!match) return 'not a stored secret: expected {SCRYPT}…, {CRAM-MD5}… or {DIGEST-MD5}… as printed by smtp-bridge hash-secret';
  const [, scheme, data] = match;
  switch (scheme) {
    case 'SCRYPT': {
      const parts = SCRYPT_FORM.exec(data);
      if (!parts) return '{SCRYPT} form must be ln=N,r=N,p=N$SALT$HASH';
      const [cost, blockSize, parallelism] = parts.slice(1, 4).map(Number);
      const salt = Buffer.from(parts[4], 'base64');
      const hash = Buffer.from(parts[5], 'base64');
      if (cost < 10 || blockSize < 1 || parallelism < 1 || parallelism > 16 || 128 * 2 ** cost * blockSize > SCRYPT_MAX_MEMORY) {
        return `{SCRYPT} parameters out of range: ln at least 10, r at least 1, p 1 to 16, and 128 * 2^ln * r at most ${SCRYPT_MAX_MEMORY / 1024 / 1024} MiB`;
      }
      if (salt.length < 8) return '{SCRYPT} salt must be at least 8 bytes';
      if (hash.length < 16 || hash.length > 64) return '{SCRYPT} hash must be 16 to 64 bytes';
      return { scheme: 'SCRYPT', cost, blockSize, parallelism, salt, hash };
    }
    case 'CRAM-MD5':
      if (!/^[0-9a-fA-F]{64}$/.test(data)) return '{CRAM-MD5} form must be 64 hex digits';
      return { scheme: 'CRAM-MD5', pads: Buffer.from(data, 'hex') };
    case 'DIGEST-MD5':
      if (!/^[0-9a-fA-F]{32}$/.test(data)) return '{DIGEST-MD5} form must be 32 hex digits';
      return { scheme: 'DIGEST-MD5', userRealmPassword: Buffer.from(data, 'hex') };
    default:
      return `unknown scheme {${scheme}} (use {SCRYPT}, {CRAM-MD5} or {DIGEST-MD5})`;
  }
}

export function formatStoredSecret(secret: StoredSecret): string {
  const unpadded = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');
  switch (secret.scheme) {
    case 'SCRYPT':
      return `{SCRYPT}ln=${secret.cost},r=${secret.blockSize},p=${secret.parallelism}$${unpadded(secret.salt)}$${unpadded(secret.hash)}`;
    case 'CRAM-MD5':
      return `{CRAM-MD5}${secret.pads.toString('hex')}`;
    case 'DIGEST-MD5':
      return `{DIGEST-MD5}${secret.userRealmPassword.toString('hex')}`;
  }
}

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Compares secrets in constant time; hashing first makes the lengths equal. */
export function secretsEqual(a: string, b: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** RFC 2195: hex HMAC-MD5 of the challenge, keyed with the password. */
export function cramMd5Digest(password: string, challenge: string): string {
  return createHmac('md5', password).update(challenge, 'utf8').digest('hex');
}

/**
 * Checks a CRAM-MD5 response. Sloppy clients (shell one-liners piping `echo`
 * into base64) send trailing newlines or spaces; old servers accepted them, so
 * do we.
 */
export function verifyCramMd5(password: string, challenge: string, response: string): boolean {
  return secretsEqual(cramMd5Digest(password, challenge), response.trim().toLowerCase());
}

import { randomBytes } from 'node:crypto';
import { passwordCredential, storedCredential, type Credential } from './credentials.js';
import type { StoredSecret } from './stored-secret.js';

type ScryptForm = Extract<StoredSecret, { scheme: 'SCRYPT' }>;

const scryptWork = (form: ScryptForm) => 2 ** form.cost * form.blockSize * form.parallelism;

/**
 * A credential no one can pass, checked for usernames that match no device:
 * an unknown username must cost the work of a known one, or timing tells an
 * attacker which usernames exist. PLAIN and LOGIN run scrypt with the
 * costliest `{SCRYPT}` parameters among `forms` (those of every device), a
 * fresh random salt and hash; without any, the same constant-time comparison
 * as a plaintext password. The other mechanisms cost one HMAC either way.
 */
export function decoyCredential(forms: readonly StoredSecret[]): Credential {
  const decoy = passwordCredential(randomBytes(32).toString('base64'));
  const scrypts = forms.filter((form): form is ScryptForm => form.scheme === 'SCRYPT');
  if (scrypts.length === 0) return decoy;
  const costliest = scrypts.reduce((a, b) => (scryptWork(b) > scryptWork(a) ? b : a));
  const unpassable = { ...costliest, salt: randomBytes(costliest.salt.length), hash: randomBytes(costliest.hash.length) };
  return { ...decoy, verifyPassword: storedCredential([unpassable]).verifyPassword };
}

import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificatePair {
  cert: Buffer;
  key: Buffer;
  generated: boolean;
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/**
 * Loads the listener certificate, creating a self-signed RSA-2048 one on first
 * start. RSA rather than ECDSA because TLS 1.0 firmware often knows no ECDSA
 * suites; SHA-256 signatures are still accepted by every TLS 1.0 client seen.
 */
export async function loadOrCreateCertificate(certFile: string, keyFile: string, hostname: string): Promise<CertificatePair> {
  const [haveCert, haveKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  if (haveCert !== haveKey) {
    throw new Error(`only one of ${certFile} and ${keyFile} exists; remove it or supply both`);
  }
  if (!haveCert) await generateSelfSigned(certFile, keyFile, hostname);
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  return { cert, key, generated: !haveCert };
}

/**
 * openssl creates its files with whatever mode the umask leaves (0666 under
 * umask 000), so they are made in a directory only this user can enter,
 * set to 0600 and only then moved into place. New directories are 0700.
 */
async function generateSelfSigned(certFile: string, keyFile: string, hostname: string): Promise<void> {
  await mkdir(dirname(certFile), { recursive: true, mode: 0o700 });
  await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(dirname(keyFile), '.certificate-'));
  const [newCert, newKey] = [join(work, 'cert.pem'), join(work, 'key.pem')];
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${hostname}`,
      '-addext',
      `subjectAltName=DNS:${hostname}`,
      '-keyout',
      newKey,
      '-out',
      newCert,
    ]).catch((err: Error) => {
      throw new Error(`could not create a self-signed certificate with openssl: ${err.message.split('\n')[0]}`);
    });
    await Promise.all([chmod(newCert, 0o600), chmod(newKey, 0o600)]);
    await rename(newKey, keyFile);
    await rename(newCert, certFile);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

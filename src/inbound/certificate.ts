import { execFile } from 'node:child_process';
import { access, chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
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
  let generated = false;
  if (!haveCert) {
    await mkdir(dirname(certFile), { recursive: true });
    await mkdir(dirname(keyFile), { recursive: true });
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
        keyFile,
        '-out',
        certFile,
      ]);
    } catch (err) {
      throw new Error(`could not create a self-signed certificate with openssl: ${(err as Error).message.split('\n')[0]}`);
    }
    generated = true;
  }
  if (generated) await chmod(keyFile, 0o600);
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  return { cert, key, generated };
}

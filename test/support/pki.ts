import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Pki {
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface SelfSigned {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

const OPENSSL_TIMEOUT_MS = 30_000;
// Clients connect by IP as often as by name, and verify whichever they used.
const SERVER_SAN = 'DNS:localhost,IP:127.0.0.1,IP:::1';
// A day of margin either side keeps the certificates valid on a machine whose
// clock is slightly off, without making them long-lived.
const DAYS = '2';

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // execFile's timeout kills this child by its own PID.
    execFile('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err) {
        reject(new Error(`openssl ${args[0]} failed: ${err.message}\n${stderr}`));
      } else {
        resolve();
      }
    });
  });
}

// A random serial avoids openssl's .srl bookkeeping file and keeps two PKIs
// made in the same directory from issuing the same serial.
function serial(): string {
  return (
    '0x' +
    randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1')
  );
}

async function readPair(certFile: string, keyFile: string): Promise<SelfSigned> {
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, certPem, keyPem };
}

/** A test CA and a `localhost` server certificate it signed, all RSA-2048. */
export async function makePki(dir: string): Promise<Pki> {
  await mkdir(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const ext = path.join(dir, 'server.ext');

  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      DAYS,
      '-keyout',
      caKey,
      '-out',
      caFile,
      '-set_serial',
      serial(),
      '-subj',
      '/CN=smtp-bridge test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', '/CN=localhost'], dir);
  // x509 -req drops the CSR's extensions, so the leaf's extensions come from a file.
  await writeFile(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${SERVER_SAN}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid,issuer',
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      caFile,
      '-CAkey',
      caKey,
      '-set_serial',
      serial(),
      '-days',
      DAYS,
      '-sha256',
      '-extfile',
      ext,
      '-out',
      certFile,
    ],
    dir,
  );
  await Promise.all([rm(csr), rm(ext)]);

  const [caPem, pair] = await Promise.all([readFile(caFile, 'utf8'), readPair(certFile, keyFile)]);
  return { caFile, certFile, keyFile, caPem, certPem: pair.certPem, keyPem: pair.keyPem };
}

/** A self-signed RSA-2048 `localhost` certificate, written as NAME.crt and NAME.key, valid for `days` days. */
export async function makeSelfSigned(dir: string, name: string, days = DAYS): Promise<SelfSigned> {
  await mkdir(dir, { recursive: true });
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      days,
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-set_serial',
      serial(),
      '-subj',
      '/CN=localhost',
      '-addext',
      `subjectAltName=${SERVER_SAN}`,
    ],
    dir,
  );
  return readPair(certFile, keyFile);
}

import { DEFAULT_CIPHERS, type SecureContextOptions } from 'node:tls';
import type { TlsVersion } from '../config/schema.js';
import type { CertificatePair } from './certificate.js';

/** TLS 1.0 and 1.1 only, where OpenSSL 3's default security level refuses the SHA-1 signatures they need. */
const LEGACY_VERSIONS: ReadonlySet<TlsVersion> = new Set(['TLSv1', 'TLSv1.1']);

export function isLegacyTls(version: TlsVersion): boolean {
  return LEGACY_VERSIONS.has(version);
}

/**
 * TLS for device listeners. OpenSSL 3 refuses TLS 1.0/1.1 handshakes ("no
 * suitable signature algorithm") unless the security level drops to 0, so
 * that happens only when the operator asked for those versions, and only the
 * level: Node's own cipher list stays, so every min_version offers the same
 * suites (docs/tls.md's table; OpenSSL's "DEFAULT" would drop the CCM and ARIA
 * ones). TLS 1.3 stays available. `dhparam: auto` adds DHE suites, 2048-bit
 * to match the RSA key, for firmware without ECDHE.
 */
export function deviceTlsOptions(certificate: CertificatePair, minVersion: TlsVersion): SecureContextOptions {
  return {
    key: certificate.key,
    cert: certificate.cert,
    minVersion,
    dhparam: 'auto',
    ...(isLegacyTls(minVersion) ? { ciphers: `${DEFAULT_CIPHERS}:@SECLEVEL=0` } : {}),
  };
}

/** What every scripted device client takes and reports, and the rules they share. */

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
export type Mechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'DIGEST-MD5';

export interface ClientOptions {
  host: string;
  port: number;
  security: 'starttls' | 'implicit' | 'none';
  /** Pins both the lowest and the highest version; absent leaves the client's defaults. */
  tlsVersion?: TlsVersion;
  /** null or absent: no AUTH at all. */
  mechanism?: Mechanism | null;
  username?: string;
  password?: string;
  from: string;
  to: string[];
  message: Buffer | string;
  /** Verify the server against this CA (and the host name or IP); absent: no verification. */
  caFile?: string;
  /** Whole-session bound; the child is killed when it is exceeded. Default 20 s. */
  timeoutMs?: number;
  /** Local address to connect from (any 127.0.0.0/8 address works on Linux), for network-based policy. */
  sourceAddress?: string;
  /**
   * Send AUTH even when EHLO does not advertise the mechanism. Without it,
   * pythonSmtplib, opensslClient and nodemailerClient stop before AUTH (ok
   * false, code null), as most device firmware does. swaks and curl always
   * check and cannot be forced.
   */
  forceAuth?: boolean;
}

export interface ClientResult {
  /** The message was accepted (250 after DATA). */
  ok: boolean;
  /** The DATA reply on success, else the reply that made the session fail; null if none came. */
  code: number | null;
  transcript: string;
  exitCode: number | null;
  /** Negotiated protocol as the client saw it ('TLSv1' … 'TLSv1.3'); null in cleartext or when unknown. */
  tlsVersion: string | null;
  timedOut: boolean;
  /** Set by swaks() when swaks is not installed outside CI. */
  skipped?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 20_000;
export const OLD_TLS: ReadonlySet<TlsVersion> = new Set(['TLSv1', 'TLSv1.1']);
// OpenSSL 3 refuses TLS 1.0/1.1 at its default security level (no SHA-1 signatures).
export const LEGACY_CIPHERS = 'DEFAULT:@SECLEVEL=0';
export const EHLO_NAME = 'client.test';

export function credentials(opts: ClientOptions): { username: string; password: string } {
  if (opts.username === undefined || opts.password === undefined) {
    throw new Error(`mechanism ${opts.mechanism} needs a username and a password`);
  }
  return { username: opts.username, password: opts.password };
}

/** The SASL mechanisms an EHLO reply advertises, from lines with or without their reply code. */
function advertisedMechanisms(ehlo: string): string[] {
  const mechanisms: string[] = [];
  for (const line of ehlo.split(/\r?\n/)) {
    const m = /^(?:\d{3}[- ])?AUTH[\s=](.*)$/i.exec(line);
    if (m)
      mechanisms.push(
        ...m[1]
          .toUpperCase()
          .split(/[\s=]+/)
          .filter(Boolean),
      );
  }
  return mechanisms;
}

export function notAdvertised(opts: ClientOptions, ehlo: string): boolean {
  return Boolean(opts.mechanism) && !opts.forceAuth && !advertisedMechanisms(ehlo).includes(opts.mechanism!);
}

export function rejectForce(client: string, opts: ClientOptions): void {
  if (opts.forceAuth) throw new Error(`${client} checks the advertised mechanisms itself and cannot be forced`);
}

/**
 * The code a result reports: the final reply on success; on failure only a
 * 4xx/5xx, since a failure after a 2xx/3xx (a TLS handshake after 220, a
 * client giving up after EHLO) was not the server's verdict.
 */
export function verdict(ok: boolean, code: number | null): number | null {
  return ok || (code !== null && code >= 400) ? code : null;
}

export function toBuffer(message: Buffer | string): Buffer {
  return typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
}

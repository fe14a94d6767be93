import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * DIGEST-MD5 (RFC 2831) as pure computations: reading the client's directive
 * list and checking its `response`, then the `rspauth` the server proves
 * itself with. Protocol state (which nonce was issued, when) is the inbound
 * stage's; the secret never leaves this stage.
 */

/**
 * The directives of a client's digest-response that the checks below use.
 * username, realm and authzid are text; the others are the bytes as sent
 * (latin1 strings), which is what the hashes are computed over.
 */
export interface DigestMd5Response {
  username: string;
  /** Absent from the response means the empty realm (RFC 2831 2.1.2). */
  realm: string;
  nonce: string;
  cnonce: string;
  /** Eight hex digits; the count of times this nonce was used. */
  nc: string;
  qop: string;
  digestUri: string;
  /** 32 lower-case hex digits. */
  response: string;
  authzid?: string;
}

export type DigestMd5Reading = { ok: true; value: DigestMd5Response } | { ok: false; problem: string };

const MD5 = (data: Buffer | string): Buffer => createHash('md5').update(data).digest();

/**
 * A string as RFC 2831 hashes it: ISO 8859-1 when every character fits, else
 * UTF-8 (the rule for charset=utf-8, which also gives the 8859-1 bytes a
 * client without charset sends). Same per-string choice as Cyrus SASL.
 */
function hashBytes(value: string): Buffer {
  return Buffer.from(value, /^[^\u0100-\uffff]*$/.test(value) ? 'latin1' : 'utf8');
}

/** H({ username-value, ":", realm-value, ":", passwd }): the binary MD5 a `secret` may store instead of the password. */
export function userRealmPasswordHash(username: string, realm: string, password: string): Buffer {
  return MD5(Buffer.concat([hashBytes(username), Buffer.from(':'), hashBytes(realm), Buffer.from(':'), hashBytes(password)]));
}

/**
 * HEX(H(A1)) with A1 = H(user:realm:pass) ":" nonce ":" cnonce [":" authzid]:
 * the binary hash goes into A1, not its hex, which a widely read write-up got
 * wrong (field note 5).
 */
export function digestMd5Ha1Hex(userRealmPass: Buffer, r: DigestMd5Response): string {
  const authzid = r.authzid === undefined ? '' : `:${r.authzid}`;
  return MD5(Buffer.concat([userRealmPass, Buffer.from(`:${r.nonce}:${r.cnonce}`, 'latin1'), Buffer.from(authzid, 'utf8')])).toString(
    'hex',
  );
}

/** KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2))). */
function digestValue(userRealmPass: Buffer, r: DigestMd5Response, a2: string): string {
  const ha2 = MD5(Buffer.from(a2, 'latin1')).toString('hex');
  return MD5(Buffer.from(`${digestMd5Ha1Hex(userRealmPass, r)}:${r.nonce}:${r.nc}:${r.cnonce}:${r.qop}:${ha2}`, 'latin1')).toString('hex');
}

/** The `response` a client that knows the password sends (A2 = "AUTHENTICATE:" digest-uri). */
export function digestMd5ClientResponse(userRealmPass: Buffer, r: DigestMd5Response): string {
  return digestValue(userRealmPass, r, `AUTHENTICATE:${r.digestUri}`);
}

/** The server's proof in the second challenge, `rspauth=...` (A2 = ":" digest-uri). */
export function digestMd5Rspauth(userRealmPass: Buffer, r: DigestMd5Response): string {
  return digestValue(userRealmPass, r, `:${r.digestUri}`);
}

/** Checks the client's `response` in constant time (both are 32 hex digits once read). */
export function verifyDigestMd5(userRealmPass: Buffer, r: DigestMd5Response): boolean {
  const expected = Buffer.from(digestMd5ClientResponse(userRealmPass, r), 'latin1');
  const received = Buffer.from(r.response, 'latin1');
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/**
 * RFC 2831 7.1 directive list: `name=token` or `name="quoted \"string\""`,
 * comma separated, with optional white space and empty elements. Names are
 * case-insensitive. A repeated directive makes the list invalid (2.1.2).
 */
export function parseDirectives(text: string): Map<string, string> | undefined {
  const directives = new Map<string, string>();
  const pattern = /[\s,]*([^\s=,"]+)\s*=\s*(?:"((?:[^"\\]|\\[\s\S])*)"|([^\s,"]*))\s*(?:,|$)/y;
  let at = 0;
  while (!/^[\s,]*$/.test(text.slice(at))) {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (!match) return undefined;
    const name = match[1].toLowerCase();
    if (directives.has(name)) return undefined;
    directives.set(name, match[2] !== undefined ? match[2].replace(/\\([\s\S])/g, '$1') : match[3]);
    at = pattern.lastIndex;
  }
  return directives;
}

/** The directives a digest-response needs exactly once (RFC 2831 2.1.2). */
const REQUIRED = ['username', 'nonce', 'cnonce', 'nc', 'digest-uri', 'response'] as const;

/**
 * Reads a decoded digest-response. Values arrive as the raw bytes of the
 * line (read as latin1); with charset=utf-8 the text values are UTF-8.
 */
export function readDigestMd5Response(raw: string): DigestMd5Reading {
  const directives = parseDirectives(raw);
  if (!directives) return { ok: false, problem: 'not a directive list' };
  const missing = REQUIRED.find((name) => !directives.has(name));
  if (missing) return { ok: false, problem: `no ${missing}` };
  const charset = directives.get('charset');
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') return { ok: false, problem: 'charset other than utf-8' };
  const text = (name: string): string | undefined => {
    const value = directives.get(name);
    return value !== undefined && charset ? Buffer.from(value, 'latin1').toString('utf8') : value;
  };
  const qop = (directives.get('qop') ?? 'auth').toLowerCase();
  if (qop !== 'auth') return { ok: false, problem: `qop ${qop} not offered` };
  const nc = directives.get('nc')!;
  if (!/^[0-9a-fA-F]{8}$/.test(nc)) return { ok: false, problem: 'nc is not 8 hex digits' };
  const response = directives.get('response')!.toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(response)) return { ok: false, problem: 'response is not 32 hex digits' };
  return {
    ok: true,
    value: {
      username: text('username')!,
      realm: text('realm') ?? '',
      nonce: directives.get('nonce')!,
      cnonce: directives.get('cnonce')!,
      nc,
      qop,
      digestUri: directives.get('digest-uri')!,
      response,
      // An empty authzid is no authzid, as Cyrus SASL treats it.
      authzid: text('authzid') || undefined,
    },
  };
}

/** The server's first challenge: one realm, qop=auth only, UTF-8, md5-sess (RFC 2831 2.1.1). */
export function digestMd5Challenge(realm: string, nonce: string): string {
  const quote = (value: string) => `"${value.replace(/(["\\])/g, '\\$1')}"`;
  return `realm=${quote(realm)},nonce=${quote(nonce)},qop="auth",charset=utf-8,algorithm=md5-sess`;
}

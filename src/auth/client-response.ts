import { randomBytes } from 'node:crypto';
import { passwordCredential } from './credentials.js';
import {
  digestMd5ClientResponse,
  digestMd5Rspauth,
  parseDirectives,
  userRealmPasswordHash,
  type DigestMd5Response,
} from './digest-md5-math.js';

/** A client's answer to one SASL challenge, with the working a person checks it by. */
export interface ClientAnswer {
  /** The base64 line to send back. */
  response: string;
  /** What the base64 stands for and the intermediate values, in order. */
  working: [string, string][];
}

const decode = (base64: string): string => Buffer.from(base64.trim(), 'base64').toString('latin1');
const encode = (text: string): string => Buffer.from(text, 'latin1').toString('base64');

/** CRAM-MD5 (RFC 2195): "user hex(HMAC-MD5(password, challenge))", in base64. */
export function cramMd5Answer(username: string, password: string, challengeBase64: string): ClientAnswer {
  const challenge = Buffer.from(challengeBase64.trim(), 'base64').toString('utf8');
  const digest = passwordCredential(password).cramMd5Digest!(challenge);
  const line = `${username} ${digest}`;
  return {
    response: Buffer.from(line, 'utf8').toString('base64'),
    working: [
      ['challenge', challenge],
      ['digest', digest],
      ['response', line],
    ],
  };
}

export interface DigestMd5Options {
  /** Default: 16 random bytes in hex, as clients do; fixed only to reproduce a recorded exchange. */
  cnonce?: string;
  /** Default: smtp/<realm>, which is the bridge's own name unless sasl_realm says otherwise. */
  digestUri?: string;
  authzid?: string;
}

/**
 * DIGEST-MD5 (RFC 2831 2.1.2) with qop=auth: the digest-response to the
 * server's first challenge, and the rspauth its second challenge must carry.
 * The hashing is the bridge's own (auth/digest-md5-math.ts).
 */
export function digestMd5Answer(
  username: string,
  password: string,
  challengeBase64: string,
  options: DigestMd5Options = {},
): ClientAnswer & { rspauth: string } {
  const directives = parseDirectives(decode(challengeBase64));
  const nonce = directives?.get('nonce');
  if (!directives || nonce === undefined) throw new Error('not a DIGEST-MD5 challenge: it has no nonce');
  const utf8 = directives.get('charset')?.toLowerCase() === 'utf-8';
  // Text values travel as UTF-8 bytes under charset=utf-8; the line is built from those bytes.
  const wire = (text: string) => (utf8 ? Buffer.from(text, 'utf8').toString('latin1') : text);
  const realm = directives.get('realm') ?? '';
  const fields: DigestMd5Response = {
    username,
    realm,
    nonce,
    cnonce: options.cnonce ?? randomBytes(16).toString('hex'),
    nc: '00000001',
    qop: 'auth',
    digestUri: options.digestUri ?? `smtp/${realm}`,
    response: '',
    authzid: options.authzid,
  };
  const secret = userRealmPasswordHash(username, realm, password);
  fields.response = digestMd5ClientResponse(secret, fields);
  const quote = (value: string) => `"${value.replace(/(["\\])/g, '\\$1')}"`;
  const line = [
    `username=${quote(wire(username))}`,
    `realm=${quote(wire(realm))}`,
    `nonce=${quote(nonce)}`,
    `cnonce=${quote(fields.cnonce)}`,
    `nc=${fields.nc}`,
    `qop=${fields.qop}`,
    `digest-uri=${quote(fields.digestUri)}`,
    `response=${fields.response}`,
    ...(utf8 ? ['charset=utf-8'] : []),
    ...(fields.authzid === undefined ? [] : [`authzid=${quote(wire(fields.authzid))}`]),
  ].join(',');
  const rspauth = digestMd5Rspauth(secret, fields);
  return {
    response: encode(line),
    rspauth,
    working: [
      ['challenge', decode(challengeBase64)],
      ['H(user:realm:pass)', secret.toString('hex')],
      ['response', line],
      ['expect rspauth', rspauth],
    ],
  };
}

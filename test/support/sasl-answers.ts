import { createHash, createHmac, randomBytes } from 'node:crypto';

/** The CRAM-MD5 answer (RFC 2195) to a server's base64 challenge, base64-encoded. */
export function cramMd5Response(username: string, password: string, challengeB64: string): string {
  const challenge = Buffer.from(challengeB64, 'base64');
  const digest = createHmac('md5', password).update(challenge).digest('hex');
  return Buffer.from(`${username} ${digest}`).toString('base64');
}

/**
 * A DIGEST-MD5 digest-response (RFC 2831 2.1.2, qop=auth) to a server's
 * base64 challenge, and the rspauth the server must answer with. Written
 * apart from the bridge's own code, for the clients that have no DIGEST-MD5.
 */
export function digestMd5Answer(
  username: string,
  password: string,
  challengeB64: string,
  host: string,
  authzid?: string,
): { response: string; rspauth: string } {
  const challenge = Buffer.from(challengeB64, 'base64').toString('utf8');
  const directive = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? '';
  const [realm, nonce] = [directive('realm'), directive('nonce')];
  const cnonce = randomBytes(12).toString('hex');
  const uri = `smtp/${host}`;
  const md5 = (data: Buffer | string) => createHash('md5').update(data).digest();
  const hex = (data: Buffer | string) => md5(data).toString('hex');
  const ha1 = hex(
    Buffer.concat([
      md5(`${username}:${realm}:${password}`),
      Buffer.from(`:${nonce}:${cnonce}${authzid === undefined ? '' : `:${authzid}`}`),
    ]),
  );
  const kd = (a2: string) => hex(`${ha1}:${nonce}:00000001:${cnonce}:auth:${hex(a2)}`);
  const fields = `username="${username}",realm="${realm}",nonce="${nonce}",cnonce="${cnonce}",nc=00000001,qop=auth,digest-uri="${uri}"`;
  const response = `${fields},response=${kd(`AUTHENTICATE:${uri}`)},charset=utf-8${authzid === undefined ? '' : `,authzid="${authzid}"`}`;
  return { response: Buffer.from(response).toString('base64'), rspauth: kd(`:${uri}`) };
}

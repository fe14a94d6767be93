import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mock, test } from 'node:test';
import type { SMTPServerSession } from 'smtp-server';
import type { BridgeAuthHandler } from '../../src/inbound/sasl/authentication.js';
import { DigestMd5Exchange, NONCE_LIFETIME_MS, type SaslChannel } from '../../src/inbound/sasl/digest-md5-exchange.js';
import { createLogger } from '../../src/observe/logger.js';
import {
  digestMd5Challenge,
  digestMd5ClientResponse,
  digestMd5Ha1Hex,
  digestMd5Rspauth,
  parseDirectives,
  readDigestMd5Response,
  userRealmPasswordHash,
  verifyDigestMd5,
  type DigestMd5Response,
} from '../../src/auth/digest-md5-math.js';
import { digestMd5Answer } from '../support/sasl-answers.js';
import { saslVectors } from '../support/vectors.js';

function read(raw: string): DigestMd5Response {
  const reading = readDigestMd5Response(raw);
  assert.ok(reading.ok, reading.ok ? '' : reading.problem);
  return reading.value;
}

test('DIGEST-MD5 reproduces every shared vector: H(user:realm:pass), HA1, response, rspauth', () => {
  assert.ok(saslVectors.digest_md5.length > 0);
  for (const v of saslVectors.digest_md5) {
    const secret = userRealmPasswordHash(v.username, v.realm, v.password);
    assert.equal(secret.toString('hex'), v.expected_h_user_realm_pass_hex);
    const response = read(Buffer.from(v.client_response_base64, 'base64').toString('latin1'));
    assert.deepEqual(response, {
      username: v.username,
      realm: v.realm,
      nonce: v.nonce,
      cnonce: v.cnonce,
      nc: v.nc,
      qop: v.qop,
      digestUri: v.digest_uri,
      response: v.expected_response,
      authzid: undefined,
    });
    assert.equal(digestMd5Ha1Hex(secret, response), v.expected_ha1_hex);
    assert.equal(digestMd5ClientResponse(secret, response), v.expected_response);
    assert.equal(digestMd5Rspauth(secret, response), v.expected_rspauth);
    assert.ok(verifyDigestMd5(secret, response));
    assert.equal(verifyDigestMd5(userRealmPasswordHash(v.username, v.realm, 'wrong'), response), false);
    assert.equal(verifyDigestMd5(secret, { ...response, nonce: 'another' }), false);
  }
});

test('the A1 mistake from the field notes (hex instead of binary H(user:realm:pass)) does not verify', () => {
  const [v] = saslVectors.digest_md5;
  const response = read(Buffer.from(v.client_response_base64, 'base64').toString('latin1'));
  const hexInsteadOfBinary = Buffer.from(v.expected_h_user_realm_pass_hex, 'latin1');
  assert.notEqual(digestMd5ClientResponse(hexInsteadOfBinary, response), v.expected_response);
});

test('an authzid enters A1, so the response binds it', () => {
  const [v] = saslVectors.digest_md5;
  const secret = userRealmPasswordHash(v.username, v.realm, v.password);
  const base = read(Buffer.from(v.client_response_base64, 'base64').toString('latin1'));
  const withAuthzid = { ...base, authzid: v.username };
  const response = digestMd5ClientResponse(secret, withAuthzid);
  assert.notEqual(response, v.expected_response);
  assert.ok(verifyDigestMd5(secret, { ...withAuthzid, response }));
  assert.equal(verifyDigestMd5(secret, { ...withAuthzid, response, authzid: 'someone-else' }), false);
});

test('directive lists: quoting, escapes, white space, empty elements, names in any case', () => {
  assert.deepEqual(
    parseDirectives(' Username="a\\"b\\\\c" , ,realm=x,\r\n nc = 00000001 ,qop="auth",\n'),
    new Map([
      ['username', 'a"b\\c'],
      ['realm', 'x'],
      ['nc', '00000001'],
      ['qop', 'auth'],
    ]),
  );
  assert.deepEqual(parseDirectives(''), new Map());
  assert.equal(parseDirectives('username="a",username="b"'), undefined, 'a repeated directive');
  assert.equal(parseDirectives('username="unterminated'), undefined);
  assert.equal(parseDirectives('username'), undefined);
  assert.equal(parseDirectives('a=b c=d'), undefined);
  assert.equal(parseDirectives('\0\x01garbage'), undefined);
});

test('a digest-response is refused for missing or malformed directives, and read with charset=utf-8', () => {
  const good =
    'username="dev",realm="r",nonce="n",cnonce="c",nc=00000001,qop=auth,digest-uri="smtp/h",response=0123456789abcdef0123456789ABCDEF';
  assert.equal(read(good).response, '0123456789abcdef0123456789abcdef');
  assert.equal(read(good.replace(',qop=auth', '')).qop, 'auth', 'qop defaults to auth');
  assert.equal(read(good.replace('realm="r",', '')).realm, '', 'no realm is the empty realm');
  const problem = (raw: string) => {
    const reading = readDigestMd5Response(raw);
    return reading.ok ? undefined : reading.problem;
  };
  assert.equal(problem(good.replace('cnonce="c",', '')), 'no cnonce');
  assert.equal(problem(good.replace('qop=auth', 'qop=auth-conf')), 'qop auth-conf not offered');
  assert.equal(problem(good.replace('nc=00000001', 'nc=1')), 'nc is not 8 hex digits');
  assert.equal(problem(good.replace(/response=\w+/, 'response=xyz')), 'response is not 32 hex digits');
  assert.equal(problem(`${good},charset=latin1`), 'charset other than utf-8');
  assert.equal(problem('not a list at all'), 'not a directive list');
  const utf8 = Buffer.from(`${good.replace('"dev"', '"dévice"')},charset=utf-8`, 'utf8').toString('latin1');
  assert.equal(read(utf8).username, 'dévice');
});

test('H(user:realm:pass) hashes 8859-1 text as 8859-1 and anything wider as UTF-8, like Cyrus', () => {
  const latin1 = userRealmPasswordHash('dévice', 'realm', 'pässword');
  assert.equal(latin1.toString('hex'), createMd5Hex(Buffer.from('dévice:realm:pässword', 'latin1')));
  const wide = userRealmPasswordHash('デバイス', 'realm', 'pass');
  assert.equal(wide.toString('hex'), createMd5Hex(Buffer.from('デバイス:realm:pass', 'utf8')));
});

test('the challenge offers one quoted realm, qop=auth, charset=utf-8 and md5-sess', () => {
  const challenge = digestMd5Challenge('bridge "lan"', 'abc123');
  assert.equal(challenge, 'realm="bridge \\"lan\\"",nonce="abc123",qop="auth",charset=utf-8,algorithm=md5-sess');
  assert.deepEqual(parseDirectives(challenge)?.get('realm'), 'bridge "lan"');
});

function createMd5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** A connection as the exchange sees it, fed one client line at a time. */
class FakeChannel implements SaslChannel {
  readonly session = { remoteAddress: '192.0.2.7' } as SMTPServerSession;
  readonly sent: { code: number; text: string }[] = [];
  user: unknown;
  private next?: (line: Buffer, done: () => void) => void;

  send(code: number, text: string): void {
    this.sent.push({ code, text });
  }

  onNextLine(handler: (line: Buffer, done: () => void) => void): void {
    this.next = handler;
  }

  authenticated(user: unknown): void {
    this.user = user;
  }

  /** The client's next line; the exchange must have asked for one. */
  answer(line: string): void {
    const handler = this.next;
    this.next = undefined;
    assert.ok(handler, 'the exchange expected no further line');
    handler(Buffer.from(line, 'latin1'), () => {});
  }

  get last(): { code: number; text: string } {
    return this.sent[this.sent.length - 1];
  }

  /** The decoded text of the last 334 challenge. */
  get challenge(): string {
    assert.equal(this.last.code, 334);
    return this.last.text;
  }
}

const PASSWORD = 'door-secret';

/** Starts an exchange against a device "door" whose password is PASSWORD, collecting log lines. */
function startExchange(args: string[] = []) {
  const channel = new FakeChannel();
  const logs: Record<string, unknown>[] = [];
  let lookups = 0;
  const authenticate: BridgeAuthHandler = (auth, _session, callback) => {
    assert.equal(auth.method, 'DIGEST-MD5');
    lookups += 1;
    const secret = userRealmPasswordHash(auth.username, auth.digest.realm, PASSWORD);
    if (!verifyDigestMd5(secret, auth.digest))
      return callback(null, { responseCode: 535, message: '5.7.8 Authentication credentials invalid' });
    callback(null, { user: 'door', serverProof: digestMd5Rspauth(secret, auth.digest) });
  };
  const logger = createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  new DigestMd5Exchange(channel, { realm: 'bridge.lan', authenticate, logger }).start(args, () => {});
  return { channel, logs, lookups: () => lookups };
}

const answerFor = (channel: FakeChannel, password = PASSWORD, authzid?: string) =>
  digestMd5Answer('door', password, channel.challenge, 'bridge.lan', authzid);

test('a DIGEST-MD5 exchange: challenge, response, rspauth, empty line, 235', () => {
  const { channel } = startExchange();
  const challenge = Buffer.from(channel.challenge, 'base64').toString();
  assert.match(challenge, /^realm="bridge\.lan",nonce="[0-9a-f]{32}",qop="auth",charset=utf-8,algorithm=md5-sess$/);
  const answer = answerFor(channel);
  channel.answer(answer.response);
  assert.equal(Buffer.from(channel.challenge, 'base64').toString(), `rspauth=${answer.rspauth}`);
  assert.equal(channel.user, undefined, 'not authenticated before the last step');
  channel.answer('');
  assert.deepEqual(channel.last, { code: 235, text: '2.7.0 Authentication successful' });
  assert.equal(channel.user, 'door');
});

test('every exchange has its own random nonce', () => {
  const nonces = new Set(
    Array.from({ length: 20 }, () => /nonce="(\w+)"/.exec(Buffer.from(startExchange().channel.challenge, 'base64').toString())?.[1]),
  );
  assert.equal(nonces.size, 20);
});

test('a nonce answered after its lifetime is refused without looking at the secret', () => {
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  try {
    const { channel, logs, lookups } = startExchange();
    const answer = answerFor(channel);
    mock.timers.tick(NONCE_LIFETIME_MS + 1);
    channel.answer(answer.response);
    assert.deepEqual(channel.last, { code: 535, text: '5.7.8 Authentication credentials invalid' });
    assert.equal(lookups(), 0);
    assert.ok(logs.some((l) => l.msg === 'authentication failed' && l.reason === 'stale-nonce' && l.sasl_username === 'door'));
  } finally {
    mock.timers.reset();
  }
});

test('a response for another nonce, or a second use of this one (nc > 1), is a stale nonce', () => {
  const first = startExchange();
  const recorded = answerFor(first.channel).response;
  const second = startExchange();
  second.channel.answer(recorded);
  assert.equal(second.channel.last.code, 535);
  assert.equal(second.lookups(), 0);
  const third = startExchange();
  const reused = Buffer.from(
    Buffer.from(answerFor(third.channel).response, 'base64').toString().replace('nc=00000001', 'nc=00000002'),
  ).toString('base64');
  third.channel.answer(reused);
  assert.equal(third.channel.last.code, 535);
  assert.ok([second, third].every(({ logs }) => logs.some((l) => l.reason === 'stale-nonce')));
});

test('an authzid is honoured only when it names the user itself', () => {
  const same = startExchange();
  same.channel.answer(answerFor(same.channel, PASSWORD, 'door').response);
  assert.equal(same.channel.last.code, 334);
  const other = startExchange();
  other.channel.answer(answerFor(other.channel, PASSWORD, 'admin').response);
  assert.equal(other.channel.last.code, 535);
  assert.ok(other.logs.some((l) => l.reason === 'authzid-not-allowed'));
});

test('a wrong password, a digest-uri for another service, garbage, "*" and an initial response are refused', () => {
  const wrong = startExchange();
  wrong.channel.answer(answerFor(wrong.channel, 'not-the-password').response);
  assert.deepEqual(wrong.channel.last, { code: 535, text: '5.7.8 Authentication credentials invalid' });
  assert.equal(wrong.lookups(), 1);
  const imap = startExchange();
  imap.channel.answer(
    Buffer.from(Buffer.from(answerFor(imap.channel).response, 'base64').toString().replace('smtp/', 'imap/')).toString('base64'),
  );
  assert.equal(imap.channel.last.code, 535);
  assert.ok(imap.logs.some((l) => l.reason === 'wrong-digest-uri'));
  const garbage = startExchange();
  garbage.channel.answer(Buffer.from('this is not a digest-response').toString('base64'));
  assert.deepEqual(garbage.channel.last, { code: 501, text: '5.5.2 Malformed DIGEST-MD5 response' });
  assert.ok(garbage.logs.some((l) => l.reason === 'malformed-response' && l.problem === 'not a directive list'));
  const aborted = startExchange();
  aborted.channel.answer('*');
  assert.deepEqual(aborted.channel.last, { code: 501, text: '5.0.0 Authentication aborted' });
  const initial = startExchange(['dXNlcm5hbWU9ImRvb3Ii']);
  assert.deepEqual(initial.channel.last, { code: 501, text: '5.5.4 Syntax: AUTH DIGEST-MD5 takes no initial response' });
});

test('a sloppy final line (anything but "*") still completes, and is logged at debug', () => {
  const { channel, logs } = startExchange();
  channel.answer(answerFor(channel).response);
  channel.answer('  ');
  assert.equal(channel.last.code, 235);
  const other = startExchange();
  other.channel.answer(answerFor(other.channel).response);
  other.channel.answer('cnNwYXV0aD1vaw==');
  assert.equal(other.channel.last.code, 235);
  assert.ok(other.logs.some((l) => l.msg === 'accepted sloppy input' && l.level === 'debug'));
  assert.ok(!logs.some((l) => l.msg === 'accepted sloppy input'), 'white space around an empty line is not worth a log line');
});

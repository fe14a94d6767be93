import net from 'node:net';
import { startProcess } from './child-process.js';
import {
  credentials,
  DEFAULT_TIMEOUT_MS,
  EHLO_NAME,
  LEGACY_CIPHERS,
  notAdvertised,
  OLD_TLS,
  toBuffer,
  verdict,
  type ClientOptions,
  type ClientResult,
} from './client-options.js';
import { cramMd5Response, digestMd5Answer } from './sasl-answers.js';
import { ReplyReader, replyLines, type SmtpReplyLine } from './smtp-reply.js';

export interface OpensslResult extends ClientResult {
  replies: SmtpReplyLine[];
}

/** Ends a scripted session early with the reply that ended it. */
class SessionEnd extends Error {
  constructor(
    readonly code: number | null,
    message: string,
  ) {
    super(message);
  }
}

/** Escapes leading dots and appends the end-of-data marker (RFC 5321 4.5.2). */
function dataPayload(message: Buffer): Buffer {
  const stuffed = message.toString('latin1').replace(/(^|\n)\./g, '$1..');
  return Buffer.from(stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n', 'latin1');
}

function opensslTlsArgs(opts: OpensslOptions): string[] {
  const args: string[] = [];
  if (opts.tlsVersion) {
    args.push({ TLSv1: '-tls1', 'TLSv1.1': '-tls1_1', 'TLSv1.2': '-tls1_2', 'TLSv1.3': '-tls1_3' }[opts.tlsVersion]);
  }
  const cipher = opts.cipher ?? (opts.tlsVersion && OLD_TLS.has(opts.tlsVersion) ? LEGACY_CIPHERS : undefined);
  if (cipher) args.push(opts.tlsVersion === 'TLSv1.3' ? '-ciphersuites' : '-cipher', cipher);
  if (opts.caFile) {
    args.push('-CAfile', opts.caFile, '-verify_return_error');
    args.push(net.isIP(opts.host) ? '-verify_ip' : '-verify_hostname', opts.host);
  }
  return args;
}

export interface OpensslOptions extends ClientOptions {
  /** false: bare LFs in the message become CRLF, the way `-crlf` would. */
  crlfBody?: boolean;
  /**
   * OpenSSL cipher list to offer, e.g. 'DHE-RSA-AES128-SHA:@SECLEVEL=0' (TLS 1.3
   * suites when tlsVersion is TLSv1.3); default: what the version needs.
   */
  cipher?: string;
}

/**
 * `openssl s_client` driven line by line, each command sent only after the
 * previous reply, as a slow embedded device would. The message is written
 * byte-exact by default (crlfBody: true, it must already use CRLF).
 */
export async function opensslClient(opts: OpensslOptions): Promise<OpensslResult> {
  if (opts.security === 'none') {
    throw new Error('openssl s_client always speaks TLS: use security starttls or implicit');
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const hostPort = net.isIPv6(opts.host) ? `[${opts.host}]:${opts.port}` : `${opts.host}:${opts.port}`;
  // -quiet keeps stdout to the server's bytes; -brief still reports the protocol on stderr;
  // -nocommands stops lines starting with Q, R, k or K from being taken as s_client commands.
  // No -crlf: it would turn CRLF in the message into CR CR LF.
  const args = ['s_client', '-connect', hostPort, '-quiet', '-brief', '-nocommands', ...opensslTlsArgs(opts)];
  if (opts.security === 'starttls') args.push('-starttls', 'smtp');
  if (opts.sourceAddress) args.push('-bind', net.isIPv6(opts.sourceAddress) ? `[${opts.sourceAddress}]:0` : `${opts.sourceAddress}:0`);

  const run = startProcess('openssl', args, timeoutMs);
  const reader = new ReplyReader();
  run.child.stdout!.on('data', (s: string) => reader.push(s));
  run.child.once('close', () => reader.end());

  const replies: SmtpReplyLine[] = [];
  const log: string[] = [];
  const send = (line: string | Buffer, shown = String(line)): void => {
    log.push(`C: ${shown}`);
    run.child.stdin!.write(typeof line === 'string' ? line + '\r\n' : line);
  };
  const read = async (): Promise<SmtpReplyLine> => {
    const reply = await reader.next();
    if (!reply) throw new SessionEnd(null, 'connection closed');
    replies.push(reply);
    log.push(...replyLines(reply.code, reply.text).map((line) => `S: ${line}`));
    return reply;
  };
  const expect = async (code: number): Promise<SmtpReplyLine> => {
    const reply = await read();
    if (reply.code !== code) throw new SessionEnd(reply.code, `expected ${code}`);
    return reply;
  };

  let ok = false;
  let code: number | null = null;
  try {
    // After STARTTLS s_client has already consumed the greeting and the first EHLO.
    if (opts.security === 'implicit') await expect(220);
    send(`EHLO ${EHLO_NAME}`);
    const ehlo = await expect(250);
    if (notAdvertised(opts, ehlo.text)) throw new SessionEnd(null, `AUTH ${opts.mechanism} is not advertised`);
    if (opts.mechanism) {
      const { username, password } = credentials(opts);
      const b64 = (s: string): string => Buffer.from(s).toString('base64');
      if (opts.mechanism === 'PLAIN') {
        send(`AUTH PLAIN ${b64(`\0${username}\0${password}`)}`, 'AUTH PLAIN <credentials>');
      } else if (opts.mechanism === 'LOGIN') {
        send('AUTH LOGIN');
        await expect(334);
        send(b64(username), '<username>');
        await expect(334);
        send(b64(password), '<password>');
      } else if (opts.mechanism === 'CRAM-MD5') {
        send('AUTH CRAM-MD5');
        const challenge = await expect(334);
        send(cramMd5Response(username, password, challenge.text.trim()), '<cram-md5 response>');
      } else {
        send('AUTH DIGEST-MD5');
        const challenge = await expect(334);
        const answer = digestMd5Answer(username, password, challenge.text.trim(), opts.host);
        send(answer.response, '<digest-md5 response>');
        const proof = await expect(334);
        if (Buffer.from(proof.text.trim(), 'base64').toString() !== `rspauth=${answer.rspauth}`)
          throw new SessionEnd(null, 'server rspauth does not match');
        send('');
      }
      await expect(235);
    }
    send(`MAIL FROM:<${opts.from}>`);
    await expect(250);
    let accepted = 0;
    for (const rcpt of opts.to) {
      send(`RCPT TO:<${rcpt}>`);
      const reply = await read();
      if (reply.code === 250 || reply.code === 251) accepted += 1;
      code = reply.code;
    }
    if (accepted === 0) throw new SessionEnd(code, 'every recipient refused');
    send('DATA');
    await expect(354);
    let body = toBuffer(opts.message);
    if (opts.crlfBody === false) body = Buffer.from(body.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
    send(dataPayload(body), `<${body.length} bytes of message>`);
    code = (await expect(250)).code;
    ok = true;
  } catch (err) {
    if (!(err instanceof SessionEnd)) throw err;
    code = err.code;
    log.push(`-- ${err.message}`);
  }
  if (run.child.exitCode === null && run.child.signalCode === null) {
    send('QUIT');
    await reader.next().then((r) => r && log.push(...replyLines(r.code, r.text).map((line) => `S: ${line}`)));
  }
  run.child.stdin!.end();
  const done = await run.done;
  return {
    ok,
    code: verdict(ok, code),
    replies,
    transcript: [...log, done.stderr ? `stderr: ${done.stderr}` : ''].filter(Boolean).join('\n'),
    exitCode: done.exitCode,
    tlsVersion: /Protocol version: (\S+)/.exec(done.stderr)?.[1] ?? null,
    timedOut: done.timedOut,
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { format } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

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

export interface SmtpReplyLine {
  code: number;
  text: string;
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

export interface OpensslResult extends ClientResult {
  replies: SmtpReplyLine[];
}

export interface NodemailerResult extends ClientResult {
  response: string | null;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const OLD_TLS: ReadonlySet<TlsVersion> = new Set(['TLSv1', 'TLSv1.1']);
// OpenSSL 3 refuses TLS 1.0/1.1 at its default security level (no SHA-1 signatures).
const LEGACY_CIPHERS = 'DEFAULT:@SECLEVEL=0';
const EHLO_NAME = 'client.test';

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

function credentials(opts: ClientOptions): { username: string; password: string } {
  if (opts.username === undefined || opts.password === undefined) {
    throw new Error(`mechanism ${opts.mechanism} needs a username and a password`);
  }
  return { username: opts.username, password: opts.password };
}

/** The SASL mechanisms an EHLO reply advertises, from lines with or without their reply code. */
export function advertisedMechanisms(ehlo: string): string[] {
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

function notAdvertised(opts: ClientOptions, ehlo: string): boolean {
  return Boolean(opts.mechanism) && !opts.forceAuth && !advertisedMechanisms(ehlo).includes(opts.mechanism!);
}

function rejectForce(client: string, opts: ClientOptions): void {
  if (opts.forceAuth) throw new Error(`${client} checks the advertised mechanisms itself and cannot be forced`);
}

/**
 * The code a result reports: the final reply on success; on failure only a
 * 4xx/5xx, since a failure after a 2xx/3xx (a TLS handshake after 220, a
 * client giving up after EHLO) was not the server's verdict.
 */
function verdict(ok: boolean, code: number | null): number | null {
  return ok || (code !== null && code >= 400) ? code : null;
}

function toBuffer(message: Buffer | string): Buffer {
  return typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
}

interface ProcessRun {
  child: ChildProcess;
  /** Settles once the child has exited; never rejects. */
  done: Promise<{ stdout: string; stderr: string; exitCode: number | null; timedOut: boolean; spawnError?: NodeJS.ErrnoException }>;
}

function startProcess(cmd: string, args: string[], timeoutMs: number): ProcessRun {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  let spawnError: NodeJS.ErrnoException | undefined;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  // A child that exits early closes its stdin; writes racing that must not crash the test.
  child.stdin!.on('error', () => {});
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<Awaited<ProcessRun['done']>>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code, timedOut, spawnError });
    });
  });
  return { child, done };
}

function runProcess(cmd: string, args: string[], input: string | Buffer, timeoutMs: number): ProcessRun['done'] {
  const run = startProcess(cmd, args, timeoutMs);
  run.child.stdin!.end(input);
  return run.done;
}

async function withTempFile<T>(content: Buffer, use: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'smtp-bridge-client-'));
  try {
    const file = path.join(dir, 'message.eml');
    await writeFile(file, content);
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const PYTHON_CLIENT = String.raw`
import base64, hashlib, json, re, secrets, smtplib, ssl, sys, warnings

# TLSVersion.TLSv1/TLSv1_1 are deprecated; pinning them is the point here.
warnings.simplefilter("ignore", DeprecationWarning)
o = json.load(sys.stdin)
res = {"ok": False, "code": None, "tlsVersion": None, "steps": [], "error": None}

def text(t):
    return t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)

def step(name, code, msg):
    res["steps"].append({"step": name, "code": code, "text": text(msg)})
    res["code"] = code
    return code

def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if o.get("caFile"):
        ctx.load_verify_locations(o["caFile"])
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    v = o.get("tlsVersion")
    if v:
        if v in ("TLSv1", "TLSv1.1"):
            ctx.set_ciphers("${LEGACY_CIPHERS}")
        ver = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
               "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[v]
        ctx.minimum_version = ver
        ctx.maximum_version = ver
    return ctx

def digest_md5(challenge):
    # smtplib has no DIGEST-MD5: RFC 2831's client side for qop=auth, checking the server's rspauth.
    text = challenge.decode("utf-8")
    if text.startswith("rspauth="):
        if text[8:] != digest_md5.rspauth:
            raise RuntimeError("server rspauth does not match")
        return ""
    d = {k.lower(): q or t for k, q, t in re.findall(r'([\w-]+)=(?:"([^"]*)"|([^,]*))', text)}
    user, realm, nonce, cnonce, uri = o["username"], d.get("realm", ""), d["nonce"], secrets.token_hex(12), "smtp/" + o["host"]
    ha1 = hashlib.md5(hashlib.md5(("%s:%s:%s" % (user, realm, o["password"])).encode()).digest() + (":%s:%s" % (nonce, cnonce)).encode()).hexdigest()
    kd = lambda a2: hashlib.md5(("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, hashlib.md5(a2.encode()).hexdigest())).encode()).hexdigest()
    digest_md5.rspauth = kd(":" + uri)
    return 'username="%s",realm="%s",nonce="%s",cnonce="%s",nc=00000001,qop=auth,digest-uri="%s",response=%s,charset=utf-8' % (user, realm, nonce, cnonce, uri, kd("AUTHENTICATE:" + uri))

server = None
try:
    t = o["timeout"]
    source = (o["sourceAddress"], 0) if o.get("sourceAddress") else None
    if o["security"] == "implicit":
        server = smtplib.SMTP_SSL(local_hostname="${EHLO_NAME}", timeout=t, source_address=source, context=context())
    else:
        server = smtplib.SMTP(local_hostname="${EHLO_NAME}", timeout=t, source_address=source)
    # connect() alone leaves _host empty, and TLS takes SNI and the name to verify from it.
    server._host = o["host"]
    if step("connect", *server.connect(o["host"], o["port"])) != 220:
        raise RuntimeError("no 220 greeting")
    step("ehlo", *server.ehlo())
    if o["security"] == "starttls":
        if not server.has_extn("starttls"):
            raise RuntimeError("server does not offer STARTTLS")
        # smtplib goes on in cleartext after a refused STARTTLS; a device pinned to TLS must not.
        if step("starttls", *server.starttls(context=context())) != 220:
            raise RuntimeError("STARTTLS refused")
        step("ehlo", *server.ehlo())
    if isinstance(server.sock, ssl.SSLSocket):
        res["tlsVersion"] = server.sock.version()
    mech = o.get("mechanism")
    if mech:
        offered = server.esmtp_features.get("auth", "").upper().split()
        if mech not in offered and not o.get("forceAuth"):
            raise RuntimeError("server does not advertise AUTH %s" % mech)
        server.user, server.password = o["username"], o["password"]
        auth = {"PLAIN": server.auth_plain, "LOGIN": server.auth_login, "CRAM-MD5": server.auth_cram_md5, "DIGEST-MD5": digest_md5}[mech]
        # Devices send LOGIN without an initial response and answer both prompts.
        step("auth", *server.auth(mech, auth, initial_response_ok=(mech == "PLAIN")))
    if step("mail", *server.mail(o["from"])) != 250:
        raise RuntimeError("MAIL FROM refused")
    accepted = [r for r in o["to"] if step("rcpt", *server.rcpt(r)) in (250, 251)]
    if not accepted:
        raise RuntimeError("every recipient refused")
    res["ok"] = step("data", *server.data(base64.b64decode(o["message"]))) == 250
    server.quit()
except smtplib.SMTPResponseException as e:
    step("error", e.smtp_code, e.smtp_error)
    res["error"] = "%s: %s %s" % (type(e).__name__, e.smtp_code, text(e.smtp_error))
except Exception as e:
    res["error"] = "%s: %s" % (type(e).__name__, e)
finally:
    if server is not None and server.sock is not None:
        server.close()
print(json.dumps(res))
`;

interface PythonReport {
  ok: boolean;
  code: number | null;
  tlsVersion: string | null;
  steps: { step: string; code: number; text: string }[];
  error: string | null;
}

/** Python's smtplib, as a scripted device: one TLS version exactly, one SASL mechanism forced. */
export async function pythonSmtplib(opts: ClientOptions): Promise<ClientResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const input = JSON.stringify({
    host: opts.host,
    port: opts.port,
    security: opts.security,
    tlsVersion: opts.tlsVersion ?? null,
    mechanism: opts.mechanism ?? null,
    ...(opts.mechanism ? credentials(opts) : {}),
    from: opts.from,
    to: opts.to,
    message: toBuffer(opts.message).toString('base64'),
    caFile: opts.caFile ?? null,
    sourceAddress: opts.sourceAddress ?? null,
    forceAuth: opts.forceAuth ?? false,
    // Socket timeout stays below the kill so python can still report what happened.
    timeout: Math.max(1, (timeoutMs - 1000) / 1000),
  });
  const run = await runProcess('python3', ['-c', PYTHON_CLIENT], input, timeoutMs);
  let report: PythonReport | undefined;
  try {
    report = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as PythonReport;
  } catch {
    // No JSON line: the transcript below carries whatever python printed instead.
  }
  const transcript = [
    ...(report?.steps ?? []).flatMap((s) => replyLines(s.code, s.text).map((line) => `${s.step}: ${line}`)),
    report?.error ? `error: ${report.error}` : '',
    report ? '' : `stdout: ${run.stdout}`,
    run.stderr ? `stderr: ${run.stderr}` : '',
    run.spawnError ? `spawn: ${run.spawnError.message}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    ok: report?.ok ?? false,
    code: verdict(report?.ok ?? false, report?.code ?? null),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: report?.tlsVersion ?? null,
    timedOut: run.timedOut,
  };
}

/** A reply as it looked on the wire: "250-first", "250-…", "250 last". */
function replyLines(code: number, text: string): string[] {
  const lines = text.split('\n');
  return lines.map((line, i) => `${code}${i < lines.length - 1 ? '-' : ' '}${line}`);
}

/** Splits a stream of SMTP server output into complete (possibly multiline) replies. */
export class ReplyReader {
  private buffered = '';
  private lines: string[] = [];
  private readonly ready: SmtpReplyLine[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).replace(/\r$/, '');
      this.buffered = this.buffered.slice(nl + 1);
      this.lines.push(line);
      const m = /^(\d{3})(?: |$)/.exec(line);
      if (m) {
        this.ready.push({ code: Number(m[1]), text: this.lines.map((l) => l.slice(4)).join('\n') });
        this.lines = [];
      }
    }
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async next(): Promise<SmtpReplyLine | null> {
    while (this.ready.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
    return this.ready.shift() ?? null;
  }
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

/**
 * Swaks as a device. Swaks adds the line end before the final dot itself and
 * turns LF into CRLF, so one trailing line end is dropped from the file to keep
 * the bytes exact; it also replaces %TOKENS% such as %DATE% in the body.
 */
export async function swaks(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('swaks', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const body = toBuffer(opts.message)
    .toString('latin1')
    .replace(/\r?\n$/, '');
  const args = ['--server', opts.host, '--port', String(opts.port), '--helo', EHLO_NAME];
  // Half the whole bound per command, so a stalled server is reported by swaks before the kill.
  args.push('--timeout', String(Math.max(1, Math.floor(timeoutMs / 2000))));
  if (opts.security === 'starttls') args.push('--tls');
  if (opts.security === 'implicit') args.push('--tls-on-connect');
  if (opts.tlsVersion) {
    args.push('--tls-protocol', { TLSv1: 'tlsv1', 'TLSv1.1': 'tlsv1_1', 'TLSv1.2': 'tlsv1_2', 'TLSv1.3': 'tlsv1_3' }[opts.tlsVersion]);
    if (OLD_TLS.has(opts.tlsVersion)) args.push('--tls-cipher', LEGACY_CIPHERS);
  }
  if (opts.caFile) args.push('--tls-verify', '--tls-ca-path', opts.caFile);
  if (opts.sourceAddress) args.push('--local-interface', opts.sourceAddress);
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    args.push('--auth', opts.mechanism, '--auth-user', username, '--auth-password', password);
  }
  args.push('--from', opts.from, '--to', opts.to.join(','));

  const run = await withTempFile(Buffer.from(body, 'latin1'), (file) =>
    runProcess('swaks', [...args, '--data', `@${file}`], '', timeoutMs),
  );
  if (run.spawnError?.code === 'ENOENT') {
    if (process.env.CI) throw new Error('swaks is not installed, and CI must run every client');
    return { ok: false, code: null, transcript: 'swaks not installed', exitCode: null, tlsVersion: null, timedOut: false, skipped: true };
  }
  const transcript = run.stdout + run.stderr;
  const lines = transcript.split('\n');
  // The last QUIT is swaks' own; a body line may read QUIT too. Its 221 is not the verdict.
  const quit = lines.map((line) => /^ [-~]> QUIT\r?$/.test(line)).lastIndexOf(true);
  // Reply lines look like "<-  250 …", "<~  250 …" (inside TLS) or "<~* 535 …" (an error).
  let code: number | null = null;
  let failed: number | null = null;
  for (const line of quit >= 0 ? lines.slice(0, quit) : lines) {
    const m = /^<(\S*)\s+(\d{3}) /.exec(line);
    if (!m) continue;
    code = Number(m[2]);
    if (m[1].includes('*') && failed === null) failed = code;
  }
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, failed ?? code),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: /TLS started with cipher ([^:\s]+):/.exec(transcript)?.[1] ?? null,
    timedOut: run.timedOut,
  };
}

/** curl's SMTP client; curl takes EHLO's name from the URL path. */
export async function curlClient(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('curl', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const host = net.isIPv6(opts.host) ? `[${opts.host}]` : opts.host;
  const scheme = opts.security === 'implicit' ? 'smtps' : 'smtp';
  const args = ['--silent', '--show-error', '--verbose', '--url', `${scheme}://${host}:${opts.port}/${EHLO_NAME}`];
  args.push('--max-time', String(Math.max(1, Math.floor(timeoutMs / 1000) - 1)));
  if (opts.security === 'starttls') args.push('--ssl-reqd');
  if (opts.tlsVersion) {
    const v = { TLSv1: '1.0', 'TLSv1.1': '1.1', 'TLSv1.2': '1.2', 'TLSv1.3': '1.3' }[opts.tlsVersion];
    args.push(`--tlsv${v}`, '--tls-max', v);
    if (OLD_TLS.has(opts.tlsVersion)) args.push('--ciphers', LEGACY_CIPHERS);
  }
  if (opts.sourceAddress) args.push('--interface', opts.sourceAddress);
  if (opts.security !== 'none') args.push(...(opts.caFile ? ['--cacert', opts.caFile] : ['--insecure']));
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    args.push('--login-options', `AUTH=${opts.mechanism}`, '--user', `${username}:${password}`);
  }
  args.push('--mail-from', opts.from, ...opts.to.flatMap((r) => ['--mail-rcpt', r]));

  const run = await withTempFile(toBuffer(opts.message), (file) => runProcess('curl', [...args, '--upload-file', file], '', timeoutMs));
  const transcript = run.stderr + run.stdout;
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, lastReplyBeforeQuit(transcript, '< ', '> QUIT')),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: /SSL connection using (\S+) /.exec(transcript)?.[1] ?? null,
    timedOut: run.timedOut,
  };
}

/** The code of the last server reply in a client's verbose log, before the client's own QUIT. */
function lastReplyBeforeQuit(transcript: string, replyPrefix: string, quit: string): number | null {
  let code: number | null = null;
  for (const line of transcript.split('\n')) {
    if (line.startsWith(quit)) break;
    const m = /^(\d{3})[ -]/.exec(line.startsWith(replyPrefix) ? line.slice(replyPrefix.length) : '');
    if (m) code = Number(m[1]);
  }
  return code;
}

const GNUTLS_VERSIONS: Record<TlsVersion, string> = { TLSv1: 'TLS1.0', 'TLSv1.1': 'TLS1.1', 'TLSv1.2': 'TLS1.2', 'TLSv1.3': 'TLS1.3' };

/**
 * msmtp (GnuTLS and GNU SASL underneath) as a device, set up on the command
 * line alone; --file=/dev/null keeps any ~/.msmtprc out. msmtp would add
 * From, Date and Message-ID headers: switched off to keep the bytes exact.
 */
export async function msmtpClient(opts: ClientOptions): Promise<ClientResult> {
  rejectForce('msmtp', opts);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const args = ['--file=/dev/null', '--debug', `--host=${opts.host}`, `--port=${opts.port}`, `--domain=${EHLO_NAME}`];
  args.push(`--timeout=${Math.max(1, Math.floor(timeoutMs / 2000))}`, `--from=${opts.from}`);
  args.push('--set-from-header=off', '--set-date-header=off', '--set-msgid-header=off');
  args.push(`--tls=${opts.security === 'none' ? 'off' : 'on'}`, `--tls-starttls=${opts.security === 'starttls' ? 'on' : 'off'}`);
  if (opts.tlsVersion) args.push(`--tls-priorities=NORMAL:-VERS-ALL:+VERS-${GNUTLS_VERSIONS[opts.tlsVersion]}`);
  args.push(opts.caFile ? `--tls-trust-file=${opts.caFile}` : '--tls-certcheck=off');
  if (opts.sourceAddress) args.push(`--source-ip=${opts.sourceAddress}`);
  if (opts.mechanism) {
    const { username, password } = credentials(opts);
    // msmtp takes a password only from a file, a keyring, a prompt or a command.
    args.push(
      `--auth=${opts.mechanism.toLowerCase()}`,
      `--user=${username}`,
      `--passwordeval=printf '%s' '${password.replace(/'/g, `'\\''`)}'`,
    );
  } else {
    args.push('--auth=off');
  }
  const run = await runProcess('msmtp', [...args, '--', ...opts.to], toBuffer(opts.message), timeoutMs);
  const transcript = run.stdout + run.stderr;
  const gnutlsVersion = /^\s*\((TLS1\.\d)\)-/m.exec(transcript)?.[1];
  return {
    ok: run.exitCode === 0,
    code: verdict(run.exitCode === 0, lastReplyBeforeQuit(transcript, '<-- ', '--> QUIT')),
    transcript,
    exitCode: run.exitCode,
    tlsVersion: (Object.keys(GNUTLS_VERSIONS) as TlsVersion[]).find((v) => GNUTLS_VERSIONS[v] === gnutlsVersion) ?? null,
    timedOut: run.timedOut,
  };
}

function nodemailerTls(opts: ClientOptions): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = { rejectUnauthorized: Boolean(opts.caFile) };
  if (opts.tlsVersion) {
    options.minVersion = opts.tlsVersion;
    options.maxVersion = opts.tlsVersion;
    if (OLD_TLS.has(opts.tlsVersion)) options.ciphers = LEGACY_CIPHERS;
  }
  return options;
}

/** nodemailer's SMTPConnection as a modern client (TLS 1.3 unless pinned), in-process. */
export async function nodemailerClient(opts: ClientOptions): Promise<NodemailerResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const log: string[] = [];
  const record = (_data: unknown, message?: unknown, ...args: unknown[]): void => {
    log.push(format(message, ...args));
  };
  const tlsOptions = nodemailerTls(opts);
  if (opts.caFile) tlsOptions.ca = await readFile(opts.caFile, 'utf8');
  const connection = new SMTPConnection({
    host: opts.host,
    port: opts.port,
    secure: opts.security === 'implicit',
    requireTLS: opts.security === 'starttls',
    ignoreTLS: opts.security === 'none',
    name: EHLO_NAME,
    localAddress: opts.sourceAddress,
    tls: tlsOptions,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    socketCloseTimeout: 0,
    transactionLog: true,
    logger: { trace: record, debug: record, info: record, warn: record, error: record, fatal: record },
  });

  let tlsVersion: string | null = null;
  let timedOut = false;
  const ended = new Promise<void>((resolve) => connection.once('end', () => resolve()));
  const failed = new Promise<never>((_resolve, reject) => connection.once('error', reject));
  failed.catch(() => {});
  const timer = setTimeout(() => {
    timedOut = true;
    connection.close();
  }, timeoutMs);
  const step = <T>(fn: (cb: (err: Error | null, value?: T) => void) => void): Promise<T | undefined> =>
    Promise.race([failed, new Promise<T | undefined>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))]);

  try {
    await step<void>((cb) => connection.connect((err) => cb(err ?? null)));
    const socket = connection._socket;
    if (socket && 'getProtocol' in socket) tlsVersion = (socket as tls.TLSSocket).getProtocol();
    // After connect() the last reply nodemailer read is the (post-STARTTLS) EHLO reply.
    if (notAdvertised(opts, connection.lastServerResponse || '')) {
      throw new Error(`AUTH ${opts.mechanism} is not advertised`);
    }
    if (opts.mechanism) {
      const { username, password } = credentials(opts);
      await step<boolean>((cb) => connection.login({ method: opts.mechanism!, user: username, pass: password }, cb));
    }
    const info = await step<SMTPConnection.SentMessageInfo>((cb) =>
      connection.send({ from: opts.from, to: opts.to }, toBuffer(opts.message), cb),
    );
    const response = info?.response ?? null;
    connection.quit();
    await Promise.race([ended, failed.catch(() => {})]);
    return {
      ok: true,
      code: response ? Number(response.slice(0, 3)) : null,
      response,
      transcript: log.join('\n'),
      exitCode: null,
      tlsVersion,
      timedOut,
    };
  } catch (err) {
    const e = err as Error & { responseCode?: number; response?: string };
    connection.close();
    return {
      ok: false,
      code: verdict(false, e.responseCode ?? null),
      response: e.response ?? null,
      transcript: [...log, `error: ${e.message}`].join('\n'),
      exitCode: null,
      tlsVersion,
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

import type net from 'node:net';
import type tls from 'node:tls';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Pki } from './pki.js';
import { freePort } from './ports.js';
import { waitUntil } from './wait.js';

export interface SmtpReply {
  code: number;
  message: string;
}

export interface ReceivedMessage {
  envelope: { mailFrom: string; rcptTo: string[] };
  /** DATA exactly as smtp-server passed it on, after dot-unstuffing. */
  raw: Buffer;
  authUser: string | null;
  authMethod: string | null;
  /** From socket.getProtocol() in onSecure; null on a cleartext session. */
  tlsProtocol: string | null;
}

export interface AuthAttempt {
  method: string;
  username: string;
  ok: boolean;
  /** Whether the credentials travelled inside TLS. */
  secure: boolean;
}

export interface UpstreamOptions {
  pki: Pki;
  mode: 'implicit' | 'starttls';
  /**
   * false plays a provider that cannot do TLS at all: STARTTLS is neither
   * advertised nor accepted, and AUTH in cleartext is accepted, so a bridge
   * that leaks the password shows up in authAttempts instead of being saved
   * by a 538.
   */
  offerStartTls?: boolean;
  users?: Record<string, string>;
  onRcpt?: (address: string) => SmtpReply | undefined;
  /** May return a promise, to play a provider that is slow to answer DATA. */
  onData?: () => SmtpReply | undefined | Promise<SmtpReply | undefined>;
  /**
   * Plays a provider that stops answering in the middle of DATA: the message
   * is never read (so the sender's writes back up) and never answered. Called
   * when such a DATA begins.
   */
  stallData?: () => void;
  /** Listen on this port instead of a free one (to bring a provider "back up" where the bridge expects it). */
  port?: number;
  /**
   * Play a provider that takes only XOAUTH2 with a live token (from a test
   * token endpoint). A dead token gets 535 as Microsoft answers, or a 334
   * error challenge as Google does.
   */
  xoauth2?: { user: string; isLive(accessToken: string): boolean; refusal?: '535' | '334' };
  /** Serve at most this many sessions at once, greeting one more with `421 4.7.0 Too many connections`, as providers do. */
  maxSessions?: number;
  /** Take at most `count` messages (counted at MAIL FROM) in any `windowMs`, answering more with `450 4.7.0`. */
  rateLimit?: { count: number; windowMs: number };
}

export interface Upstream {
  host: string;
  port: number;
  server: SMTPServer;
  messages: ReceivedMessage[];
  authAttempts: AuthAttempt[];
  /** Errors the server emitted, such as refused TLS handshakes. */
  errors: Error[];
  /** Sessions opened so far. */
  connections: number;
  /** The most sessions served at once, and how many were turned away over `maxSessions`. */
  mostSessions: number;
  refusedSessions: number;
  /** MAIL FROMs answered 450 over `rateLimit`. */
  refusedOverRate: number;
  waitForMessages(n: number, timeoutMs: number): Promise<ReceivedMessage[]>;
  dropSessions(): void;
  close(): Promise<void>;
}

export interface ServedSmtp {
  host: string;
  port: number;
  /** Hangs up on every open session but keeps listening, as a provider dropping idle clients. */
  dropSessions(): void;
  close(): Promise<void>;
}

export interface AcceptAllServer {
  host: string;
  port: number;
  server: SMTPServer;
  received: number;
  errors: Error[];
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const DEFAULT_USERS: Record<string, string> = { 'relay@example.net': 'upstream-secret' };

interface SessionUser {
  username: string;
  method: string;
}

function replyError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/**
 * Listens on 127.0.0.1 on a port the kernel picks (listening on 0 directly has
 * no window in which another process can take it). close() tears every open session down
 * at once: smtp-server's own close() waits out its closeTimeout (30 s) and a
 * half-close grace period, which would make a test's teardown hang on a client
 * that stalled.
 */
export async function serveSmtp(server: SMTPServer, port = 0): Promise<ServedSmtp> {
  const sockets = new Set<net.Socket>();
  server.server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, HOST, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.server.address() as net.AddressInfo).port;
  const dropSessions = (): void => {
    // The topmost socket of a session goes first: tearing a TLS wrap down from
    // below while it is still handshaking can crash Node.
    for (const connection of server.connections) {
      connection._socket.destroy();
    }
    for (const socket of sockets) {
      socket.destroy();
    }
  };
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      dropSessions();
    });
  return { host: HOST, port: bound, dropSessions, close };
}

/** A real SMTP server playing a hardened provider: TLS 1.2+, AUTH PLAIN/LOGIN only, auth required. */
export async function startUpstream(opts: UpstreamOptions): Promise<Upstream> {
  const users = opts.users ?? DEFAULT_USERS;
  const offerStartTls = opts.offerStartTls ?? true;
  const messages: ReceivedMessage[] = [];
  const authAttempts: AuthAttempt[] = [];
  const errors: Error[] = [];
  const protocols = new Map<string, string>();
  const sessions = new Set<string>();
  const mailTimes: number[] = [];

  const server = new SMTPServer({
    secure: opts.mode === 'implicit',
    key: opts.pki.keyPem,
    cert: opts.pki.certPem,
    minVersion: 'TLSv1.2',
    name: 'upstream.test',
    authMethods: opts.xoauth2 ? ['XOAUTH2'] : ['PLAIN', 'LOGIN'],
    // With STARTTLS disabled, smtp-server accepts AUTH in cleartext instead of answering 538.
    disabledCommands: offerStartTls ? [] : ['STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    onConnect(session, callback) {
      upstream.connections += 1;
      if (sessions.size >= (opts.maxSessions ?? Infinity)) {
        upstream.refusedSessions += 1;
        callback(replyError({ code: 421, message: '4.7.0 Too many connections' }));
        return;
      }
      sessions.add(session.id);
      upstream.mostSessions = Math.max(upstream.mostSessions, sessions.size);
      callback();
    },
    onMailFrom(_address, _session, callback) {
      if (opts.rateLimit) {
        const now = Date.now();
        while (mailTimes.length > 0 && mailTimes[0] <= now - opts.rateLimit.windowMs) mailTimes.shift();
        if (mailTimes.length >= opts.rateLimit.count) {
          upstream.refusedOverRate += 1;
          callback(replyError({ code: 450, message: '4.7.0 Rate limit exceeded, try again later' }));
          return;
        }
        mailTimes.push(now);
      }
      callback();
    },
    onSecure(socket, session, callback) {
      protocols.set(session.id, (socket as tls.TLSSocket).getProtocol() ?? 'unknown');
      callback();
    },
    onAuth(auth, session, callback) {
      const username = auth.username ?? '';
      if (opts.xoauth2) {
        const { user, isLive, refusal } = opts.xoauth2;
        const ok = auth.method === 'XOAUTH2' && username === user && isLive(auth.accessToken ?? '');
        authAttempts.push({ method: auth.method, username, ok, secure: session.secure });
        if (ok) callback(null, { user: { username, method: auth.method } satisfies SessionUser });
        else if (refusal === '334') callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } });
        else callback(Object.assign(new Error('5.7.3 Authentication unsuccessful'), { responseCode: 535 }));
        return;
      }
      const ok = Object.hasOwn(users, username) && users[username] === auth.password;
      authAttempts.push({ method: auth.method, username, ok, secure: session.secure });
      if (!ok) {
        callback(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
        return;
      }
      const user: SessionUser = { username, method: auth.method };
      callback(null, { user });
    },
    onRcptTo(address, _session, callback) {
      const reply = opts.onRcpt?.(address.address);
      callback(reply ? replyError(reply) : null);
    },
    onData(stream, session: SMTPServerSession, callback) {
      if (opts.stallData) return opts.stallData();
      readAll(stream).then(
        async (raw) => {
          const reply = await opts.onData?.();
          if (reply) {
            callback(replyError(reply));
            return;
          }
          const user = session.user as SessionUser | undefined;
          const { mailFrom, rcptTo } = session.envelope;
          messages.push({
            envelope: { mailFrom: mailFrom ? mailFrom.address : '', rcptTo: rcptTo.map((r) => r.address) },
            raw,
            authUser: user?.username ?? null,
            authMethod: user?.method ?? null,
            tlsProtocol: protocols.get(session.id) ?? null,
          });
          callback(null, 'OK: queued as upstream-' + messages.length);
        },
        (err: Error) => callback(err),
      );
    },
    onClose(session) {
      protocols.delete(session.id);
      sessions.delete(session.id);
    },
  });
  server.on('error', (err) => errors.push(err));
  const served = await serveSmtp(server, opts.port);

  const upstream: Upstream = {
    host: served.host,
    port: served.port,
    server,
    messages,
    authAttempts,
    errors,
    connections: 0,
    mostSessions: 0,
    refusedSessions: 0,
    refusedOverRate: 0,
    waitForMessages: (n, timeoutMs) =>
      waitUntil(
        () => `the upstream to get ${n} messages (it has ${messages.length})`,
        () => messages.length >= n && messages.slice(),
        timeoutMs,
      ),
    dropSessions: served.dropSessions,
    close: served.close,
  };
  return upstream;
}

/**
 * A port where nothing listens: freshly bound and released, so a connection
 * to it is refused rather than left hanging.
 */
export function startDownPort(host = HOST): Promise<number> {
  return freePort(host);
}

/** A plain SMTP sink without TLS or AUTH that accepts everything; a baseline for benchmarks. */
export async function startAcceptAllServer(): Promise<AcceptAllServer> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      stream.on('end', () => {
        sink.received += 1;
        callback();
      });
      stream.resume();
    },
  });
  const errors: Error[] = [];
  server.on('error', (err) => errors.push(err));
  const served = await serveSmtp(server);
  const sink: AcceptAllServer = { ...served, server, received: 0, errors };
  return sink;
}

import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPServer, type SMTPServerConnectionInfo, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type net from 'node:net';
import type tls from 'node:tls';
import type { LimitSettings } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { CommandStream } from './command-stream.js';
import type { ConnectionLimits, Refusal } from './connection-limits.js';
import type { BridgeAuthHandler } from './sasl/authentication.js';
import { DigestMd5Exchange, type SaslChannel } from './sasl/digest-md5-exchange.js';
import { withoutEncodedLineEnd } from './sasl/sloppy-response.js';
import { replies } from './replies.js';
import { reworded } from './reply-wording.js';
import { repairAddressCommand } from './sloppy-address.js';

/** Listener-level behaviour that smtp-server has no option for. */
export interface BridgeListenerSettings {
  /** Delay before the 220 greeting; smtp-server hard-codes 100 ms of early-talker detection. */
  greetingDelayMs: number;
  /** Whether AUTH may run before TLS on this listener, for a client at this address. */
  allowCleartextAuth: (clientIp: string) => boolean;
  /** Whether EHLO repeats its AUTH line as "AUTH=…" for clients written before RFC 2554. */
  authEquals: boolean;
  /** The realm DIGEST-MD5 offers. */
  realm: string;
  /** The session's onAuth hook, called directly by the mechanisms smtp-server does not have. */
  authenticate: BridgeAuthHandler;
  /** Whether the device behind this session ends DATA with a bare-LF "." (its allow_bare_lf_dot). */
  allowsBareLfDot: (session: SMTPServerSession) => boolean;
  /** Time and command limits of one session. */
  limits: LimitSettings;
  /** Connection counts shared by every listener. */
  connections: ConnectionLimits;
  logger: Logger;
}

/** Commands that move no mail and prove nothing: Postfix's junk commands, plus the greetings and HELP. */
const JUNK_COMMANDS = new Set(['NOOP', 'RSET', 'VRFY', 'EXPN', 'HELP', 'HELO', 'EHLO', 'ETRN']);

/** How long a refused client has to read its 421 before the socket is destroyed. */
const REFUSED_LINGER_MS = 2000;

/** How soon a limit that ran out while the bridge owed the client a reply is checked again. */
const OWED_REPLY_RECHECK_MS = 1000;

/** Replies whose text already starts with an enhanced status code ("5.7.1 ..."). */
const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * The smtp-server internals this file relies on, with the arity each has in
 * the pinned version and why we need it. smtp-server has no public hook for
 * any of these; the package version is pinned exactly, and
 * test/unit/smtp-server-internals.test.ts fails loudly when an upgrade
 * renames, removes or reshapes one of them.
 */
export const SMTP_SERVER_INTERNALS = {
  connection: {
    /** Overridden: the fixed 100 ms early-talker delay before the greeting becomes greeting_delay_ms. */
    init: 0,
    /** Called by init once the socket is set up; sends the greeting. */
    connectionReady: 1,
    /** Called by init: attaches the socket listeners, then calls back. */
    _setListeners: 1,
    /** Overridden: our texts carry their own enhanced status code; 421 on shutdown says 4.3.2. */
    send: 3,
    /** Overridden: 538 before TLS where cleartext AUTH is not allowed, DIGEST-MD5, tidied SASL lines. */
    handler_AUTH: 2,
    /** Overridden: hides AUTH before TLS, adds the AUTH= line for old clients. */
    handler_EHLO: 2,
    /** Overridden: a second chance for sloppy MAIL FROM / RCPT TO addresses. */
    _parseAddressCommand: 2,
    /** Called when DIGEST-MD5 succeeds, to set session.transmissionType as smtp-server's own SASL does. */
    _transmissionType: 0,
    /** Overridden: early talkers wait for the greeting; junk commands are counted and the line timer stopped. */
    _onCommand: 2,
    /** Overridden: our parser (command-stream.ts), which reports command input for the line timer. */
    _createParser: 0,
    /** Overridden: tells the parser whether this device's DATA may end at a bare-LF ".". */
    handler_DATA: 2,
    /** Overridden: stops the line and session timers. */
    _onClose: 0,
  },
  /**
   * Instance fields read or set: the next-line handler of a SASL exchange, the owning server; whether the
   * greeting went out, the connection is closing, a handler owes a reply, a message is being read.
   */
  connectionFields: [
    '_nextHandler',
    '_server',
    'session',
    'secure',
    'remoteAddress',
    'name',
    '_ready',
    '_closing',
    '_closed',
    '_handlerPending',
    '_dataStream',
    '_parser',
  ],
  server: {
    /** Overridden: creates our connection class instead of smtp-server's. */
    connect: 2,
    /** Called from connect, as smtp-server's own connect does. */
    _onError: 1,
    _onClientConnect: 1,
    /** Overridden: bounds an implicit-TLS handshake by line_timeout. */
    _acceptSocket: 2,
  },
  /**
   * Read to tell a shutdown's 421 from other 421s; `options`, `connections`; `server` (the net.Server,
   * whose accept handler is wrapped by the connection limits); `_pendingSockets` (the TLS socket of a
   * handshake in progress).
   */
  serverFields: ['_closeTimeout', 'options', 'connections', 'server', '_pendingSockets'],
  /** The parser (command-stream.ts): its input per chunk, DATA's bytes, and the fields it reads. */
  stream: {
    _write: 3,
    _feedDataStream: 2,
  },
  streamFields: ['_dataMode', '_lastBytes', '_atDataStart'],
} as const;

/**
 * smtp-server's connection, adjusted where the LAN use case differs from an
 * Internet MX, through the internals listed in SMTP_SERVER_INTERNALS. The
 * end-to-end tests exercise every override with real clients.
 */
export class BridgeConnection extends SMTPConnection {
  /** A command that arrived before the greeting, answered right after it. */
  private earlyCommand?: () => void;
  private lineTimer?: NodeJS.Timeout;
  private sessionTimer?: NodeJS.Timeout;
  private junkCommands = 0;
  private errors = 0;
  /** Gives the connection's place in the connection limits back; set by BridgeServer.connect(). */
  releaseLimits?: () => void;

  private get settings(): BridgeListenerSettings {
    return (this._server as BridgeServer).settings;
  }

  override init(): void {
    this.sessionTimer = setTimeout(() => this.closeForTime('session_timeout'), this.settings.limits.session_timeout);
    this.sessionTimer.unref();
    this._setListeners(() => {
      const ready = () => this.connectionReady(() => this.answerEarlyCommand());
      if (this.settings.greetingDelayMs > 0) setTimeout(ready, this.settings.greetingDelayMs).unref();
      else setImmediate(ready);
    });
  }

  /**
   * smtp-server answers a command sent before the greeting with "421 You talk
   * too soon", a spam-bot check Postfix keeps out of smtpd. BusyBox sendmail
   * talks early by design, so the command waits for the greeting instead;
   * the parser reads nothing more until it is answered.
   */
  override _onCommand(command: Buffer, callback?: () => void): void {
    if (!this._ready && !this._closing) {
      this.settings.logger.debug({ client_ip: this.remoteAddress }, 'early talker: command before the greeting, answered after it');
      this.earlyCommand = () => this._onCommand(command, callback);
      return;
    }
    clearTimeout(this.lineTimer);
    this.lineTimer = undefined;
    const name = command.toString('latin1').split(' ', 1)[0].toUpperCase();
    if (!this._nextHandler && JUNK_COMMANDS.has(name) && ++this.junkCommands > this.settings.limits.max_junk_commands) {
      this.closeForFlood('max_junk_commands');
      return;
    }
    super._onCommand(command, callback);
  }

  private answerEarlyCommand(): void {
    const early = this.earlyCommand;
    this.earlyCommand = undefined;
    early?.();
  }

  /** smtp-server's parser wiring, with the bridge's parser (see command-stream.ts). */
  override _createParser(): CommandStream {
    const parser = new CommandStream({ maxCommandLength: this._server.options.maxCommandLength });
    parser.oncommand = (command, callback) => this._onCommand(command, callback);
    parser.on('error', (err: Error) => this.send(421, 'Error: ' + err.message));
    parser.onCommandInput = () => this.startLineTimer();
    return parser;
  }

  /** Times a command line from its first byte: the idle timeout alone lets one byte every few seconds hold a session. */
  private startLineTimer(): void {
    if (this.lineTimer) return;
    this.lineTimer = setTimeout(() => this.closeForTime('line_timeout'), this.settings.limits.line_timeout);
    this.lineTimer.unref();
  }

  override handler_DATA(command: Buffer, callback: () => void): void {
    if (this._parser instanceof CommandStream) this._parser.bareLfDataEnd = this.settings.allowsBareLfDot(this.session);
    super.handler_DATA(command, callback);
  }

  /**
   * A time limit ran out. While the bridge itself owes a reply (a handler
   * still deciding, a message being spooled) the client is not the slow one:
   * closing then could lose a message the device would be told to resend.
   */
  private closeForTime(limit: 'line_timeout' | 'session_timeout'): void {
    if (this._closing || this._closed) return;
    if (this.earlyCommand || this._handlerPending || (this._dataStream && this._parser && !this._parser._dataMode)) {
      const timer = setTimeout(() => this.closeForTime(limit), OWED_REPLY_RECHECK_MS);
      timer.unref();
      if (limit === 'line_timeout') this.lineTimer = timer;
      else this.sessionTimer = timer;
      return;
    }
    const ms = this.settings.limits[limit];
    this.settings.logger.warn({ client_ip: this.remoteAddress, limit, ms }, 'connection closed: client too slow');
    const { code, text } = limit === 'line_timeout' ? replies.commandLineTooSlow(this.name) : replies.sessionTooLong(this.name);
    this.send(code, text);
  }

  private closeForFlood(limit: 'max_junk_commands' | 'max_errors'): void {
    this.settings.logger.warn(
      { client_ip: this.remoteAddress, limit, max: this.settings.limits[limit] },
      'connection closed: too many commands without progress',
    );
    const { code, text } = limit === 'max_errors' ? replies.tooManyErrors(this.name) : replies.tooManyJunkCommands(this.name);
    this.send(code, text);
  }

  override _onClose(): void {
    clearTimeout(this.lineTimer);
    clearTimeout(this.sessionTimer);
    this.releaseLimits?.();
    super._onClose();
  }

  /**
   * Our own replies carry their enhanced status code in the text, chosen per
   * rule; smtp-server's guess from the numeric code (550 → 5.1.1) would be wrong.
   */
  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    data = reworded(code, data);
    // smtp-server says 4.4.2 (connection dropped); a server going down is 4.3.2 (system not accepting).
    if (code === 421 && this._server._closeTimeout && typeof data === 'string' && !ENHANCED_PREFIX.test(data))
      data = `${replies.shuttingDownPrefix} ${data}`;
    const ownCode = typeof data === 'string' && ENHANCED_PREFIX.test(data);
    super.send(code, data, ownCode ? false : context);
    this.countProgress(code, context);
  }

  /**
   * Postfix's smtpd_hard_error_limit: a client collecting error replies
   * without getting a message through is disconnected. A message accepted or
   * a successful AUTH is progress and starts both counts afresh.
   */
  private countProgress(code: number, context?: string | false): void {
    if (code === 235 || (code === 250 && context === 'DATA_OK')) {
      this.junkCommands = 0;
      this.errors = 0;
    } else if (code >= 400 && code !== 421 && !this._closing && ++this.errors >= this.settings.limits.max_errors) {
      this.closeForFlood('max_errors');
    }
  }

  /**
   * AUTH before TLS is refused with 538 unless the listener allows it for this
   * client, even on listeners that offer no STARTTLS, where smtp-server would
   * let it through.
   * DIGEST-MD5, which smtp-server lacks, runs here; everything else (and the
   * 503/504 refusals) stays smtp-server's, with each response tidied first.
   * AUTH after HELO needs nothing: HELO sets the same hostNameAppearsAs that
   * smtp-server checks before AUTH.
   */
  override handler_AUTH(command: Buffer, callback: () => void): void {
    if (!this.secure && !this.settings.allowCleartextAuth(this.remoteAddress)) {
      this.send(replies.encryptionRequired.code, replies.encryptionRequired.text);
      return callback();
    }
    const [, method = '', ...args] = command.toString().trim().split(/\s+/);
    if (method.toUpperCase() === 'DIGEST-MD5' && !this.session.user && this._server.options.authMethods.includes('DIGEST-MD5')) {
      return new DigestMd5Exchange(this.saslChannel(), this.settings).start(args, callback);
    }
    const initial = args.length === 1 ? this.tidySaslResponse(method, args[0]) : undefined;
    super.handler_AUTH(
      initial === undefined ? command : Buffer.from(`AUTH ${method} ${initial}`),
      this.tidyingNextResponse(method, callback),
    );
  }

  /** The response without an encoded trailing line end (see sloppy-response.ts), logged at debug when it had one. */
  private tidySaslResponse(method: string, response: string): string | undefined {
    const tidy = withoutEncodedLineEnd(response);
    if (tidy !== undefined) {
      this.settings.logger.debug(
        { client_ip: this.remoteAddress, sasl_method: method.toUpperCase(), sloppy: 'line end inside a base64 SASL response' },
        'accepted sloppy input',
      );
    }
    return tidy;
  }

  /**
   * `done` for one step of smtp-server's own exchange: when the step asked
   * for another line, that line goes through tidySaslResponse first — set up
   * before the parser may read on.
   */
  private tidyingNextResponse(method: string, done: () => void): () => void {
    return () => {
      const next = this._nextHandler;
      if (next) {
        this._nextHandler = (line, lineDone) => {
          const tidy = this.tidySaslResponse(method, line.toString());
          next.call(this, tidy === undefined ? line : Buffer.from(tidy), this.tidyingNextResponse(method, lineDone));
        };
      }
      done();
    };
  }

  /**
   * Rewrites the AUTH line of smtp-server's EHLO reply: left out where AUTH
   * would be refused, so clients go for STARTTLS first, and repeated as
   * "AUTH=…" for old clients, as Postfix's broken_sasl_auth_clients does.
   */
  override handler_EHLO(command: Buffer, callback: () => void): void {
    const hideAuth = !this.secure && !this.settings.allowCleartextAuth(this.remoteAddress);
    const send = this.send;
    this.send = (code, data, context) => {
      this.send = send;
      const lines = Array.isArray(data) ? data.flatMap((line) => (/^AUTH /.test(line) ? this.authLines(line, hideAuth) : [line])) : data;
      send.call(this, code, lines, context);
    };
    super.handler_EHLO(command, callback);
  }

  private authLines(line: string, hide: boolean): string[] {
    if (hide) return [];
    return this.settings.authEquals ? [line, line.replace(/^AUTH /, 'AUTH=')] : [line];
  }

  /**
   * smtp-server's strict address parser, then a second chance for the
   * harmless forms old firmware sends (see sloppy-address.ts), logged at
   * debug. Everything else stays refused with 501.
   */
  override _parseAddressCommand(name: string, command: Buffer | string): ReturnType<SMTPConnection['_parseAddressCommand']> {
    const strict = super._parseAddressCommand(name, command);
    if (strict) return strict;
    const repair = repairAddressCommand(command.toString());
    const parsed = repair ? super._parseAddressCommand(name, repair.command) : false;
    if (!repair || !parsed) return false;
    if (repair.localPart !== undefined) parsed.address = repair.localPart + parsed.address.slice(parsed.address.lastIndexOf('@'));
    const fields = { client_ip: this.remoteAddress, command: name.toUpperCase(), address: parsed.address, sloppy: repair.sloppiness };
    this.settings.logger.debug(fields, 'accepted sloppy input');
    return parsed;
  }

  /** What a SASL exchange of the bridge's own drives: the same internals smtp-server's sasl.js uses. */
  private saslChannel(): SaslChannel {
    return {
      session: this.session,
      send: (code, text) => this.send(code, text),
      onNextLine: (handler) => {
        this._nextHandler = (line, done) => handler(line, done);
      },
      authenticated: (user) => {
        this.session.user = user;
        this.session.transmissionType = this._transmissionType();
      },
    };
  }
}

/** smtp-server with our connection class, the listener's own settings and the shared connection limits. */
export class BridgeServer extends SMTPServer {
  /** Every admitted socket until it closes, so that stop can end what close() left half-closed. */
  private readonly sockets = new Set<net.Socket>();
  /**
   * Each accepted socket's release from the connection limits. STARTTLS
   * removes every listener from the plain socket (smtp-server's upgrade), so
   * its 'close' alone would never give the place back: the session's own
   * close does too, whichever comes first.
   */
  private readonly releases = new WeakMap<net.Socket, () => void>();

  constructor(
    options: SMTPServerOptions,
    readonly settings: BridgeListenerSettings,
  ) {
    super(options);
    // smtp-server's accept handler runs only for connections within the limits, so a refused
    // socket never reaches a TLS handshake or a session.
    const [accept] = this.server.listeners('connection') as ((socket: net.Socket) => void)[];
    this.server.removeListener('connection', accept);
    this.server.on('connection', (socket: net.Socket) => {
      const admitted = settings.connections.admit(socket.remoteAddress ?? '');
      if (typeof admitted === 'string') return this.refuse(socket, admitted);
      this.sockets.add(socket);
      const release = () => {
        this.sockets.delete(socket);
        admitted();
      };
      this.releases.set(socket, release);
      socket.once('close', release);
      accept(socket);
    });
  }

  /**
   * 421 and close. On an implicit-TLS listener the client expects a TLS
   * handshake, which a refused client is not worth: it is closed without a reply.
   */
  private refuse(socket: net.Socket, limit: Refusal): void {
    socket.on('error', () => {});
    if (this.options.secure) return void socket.destroy();
    const timer = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.resume();
    const hostname = this.options.name ?? '';
    const { code, text } =
      limit === 'max_connections' ? replies.tooManyConnections(hostname) : replies.tooManyConnectionsFromClient(hostname);
    socket.end(`${code} ${text}\r\n`);
  }

  /**
   * smtp-server guards an implicit-TLS handshake only with the idle timeout,
   * which every byte resets; a handshake trickled a byte at a time gets
   * line_timeout in all, like a command line.
   */
  override _acceptSocket(socket: net.Socket, handshake: boolean): (() => void) | false {
    const release = super._acceptSocket(socket, handshake);
    if (!release || !handshake) return release;
    const deadline = setTimeout(() => {
      this.settings.logger.warn(
        { client_ip: socket.remoteAddress, limit: 'line_timeout', ms: this.settings.limits.line_timeout },
        'connection closed: client too slow',
      );
      // The topmost socket: tearing a TLS wrap down from below mid-handshake crashes Node.
      (this._pendingSockets.get(socket) ?? socket).destroy();
    }, this.settings.limits.line_timeout);
    deadline.unref();
    return () => {
      clearTimeout(deadline);
      release();
    };
  }

  /**
   * smtp-server's close() answers open sessions 421 after closeTimeout but
   * then waits up to 5 s more for each client to close its side; at shutdown
   * that wait is not the client's to take.
   */
  destroySockets(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    const connection = new BridgeConnection(this, socket, socketOptions);
    connection.releaseLimits = this.releases.get(socket);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: SMTPServerConnectionInfo) => this._onClientConnect(data));
    connection.init();
  }
}

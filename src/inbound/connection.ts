import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPServer, type SMTPServerConnectionInfo, type SMTPServerOptions } from 'smtp-server';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../observe/logger.js';
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
  logger: Logger;
}

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
  },
  /** Instance fields read or set: the next-line handler of a SASL exchange, the owning server. */
  connectionFields: ['_nextHandler', '_server', 'session', 'secure', 'remoteAddress', 'name'],
  server: {
    /** Overridden: creates our connection class instead of smtp-server's. */
    connect: 2,
    /** Called from connect, as smtp-server's own connect does. */
    _onError: 1,
    _onClientConnect: 1,
  },
  /** Read to tell a shutdown's 421 from other 421s; `options` and `connections` for the client cap. */
  serverFields: ['_closeTimeout', 'options', 'connections'],
} as const;

/**
 * smtp-server's connection, adjusted where the LAN use case differs from an
 * Internet MX, through the internals listed in SMTP_SERVER_INTERNALS. The
 * end-to-end tests exercise every override with real clients.
 */
export class BridgeConnection extends SMTPConnection {
  private get settings(): BridgeListenerSettings {
    return (this._server as BridgeServer).settings;
  }

  override init(): void {
    this._setListeners(() => {
      if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
        const { code, text } = replies.tooManyClients(this.name);
        return this.send(code, text, false);
      }
      const ready = () => this.connectionReady();
      if (this.settings.greetingDelayMs > 0) setTimeout(ready, this.settings.greetingDelayMs).unref();
      else setImmediate(ready);
    });
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

/** smtp-server with our connection class and the listener's own settings. */
export class BridgeServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    readonly settings: BridgeListenerSettings,
  ) {
    super(options);
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    const connection = new BridgeConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: SMTPServerConnectionInfo) => this._onClientConnect(data));
    connection.init();
  }
}

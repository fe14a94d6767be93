import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPServer, type SMTPServerConnectionInfo, type SMTPServerOptions } from 'smtp-server';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../observe/logger.js';
import type { BridgeAuthHandler } from './sasl/authentication.js';
import { DigestMd5Exchange, type SaslChannel } from './sasl/digest-md5-exchange.js';
import { withoutEncodedLineEnd } from './sasl/sloppy-response.js';
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
 * smtp-server's connection, adjusted where the LAN use case differs from an
 * Internet MX. This reaches into smtp-server internals (init, handler_AUTH,
 * handler_EHLO, send, _parseAddressCommand, _nextHandler), which is why the
 * package version is pinned exactly; the end-to-end tests exercise every
 * override with real clients (DIGEST-MD5 and the tidied SASL lines in
 * test/interop.test.ts and test/legacy-dialects.test.ts), so an upgrade that
 * moves these internals fails there.
 */
export class BridgeConnection extends SMTPConnection {
  private get settings(): BridgeListenerSettings {
    return (this._server as BridgeServer).settings;
  }

  override init(): void {
    this._setListeners(() => {
      if (this._server.options.maxClients && this._server.connections.size > this._server.options.maxClients) {
        return this.send(421, this.name + ' Too many connected clients, try again in a moment', false);
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
    // smtp-server says 4.4.2 (connection dropped); a server going down is 4.3.2 (system not accepting).
    if (code === 421 && this._server._closeTimeout && typeof data === 'string' && !ENHANCED_PREFIX.test(data)) data = `4.3.2 ${data}`;
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
      this.send(538, '5.7.11 Encryption required for requested authentication mechanism');
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

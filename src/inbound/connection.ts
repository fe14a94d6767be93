import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPServer, type SMTPServerConnectionInfo, type SMTPServerOptions } from 'smtp-server';
import type net from 'node:net';
import type tls from 'node:tls';

/** Listener-level behaviour that smtp-server has no option for. */
export interface BridgeListenerSettings {
  /** Delay before the 220 greeting; smtp-server hard-codes 100 ms of early-talker detection. */
  greetingDelayMs: number;
  /** Whether AUTH may run before TLS on this listener. */
  allowCleartextAuth: boolean;
}

/** Replies whose text already starts with an enhanced status code ("5.7.1 ..."). */
const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * smtp-server's connection, adjusted where the LAN use case differs from an
 * Internet MX. This reaches into smtp-server internals (init, handler_AUTH,
 * handler_EHLO, send), which is why the package version is pinned exactly;
 * the end-to-end tests exercise every override with real clients.
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
    const ownCode = typeof data === 'string' && ENHANCED_PREFIX.test(data);
    super.send(code, data, ownCode ? false : context);
  }

  /**
   * AUTH before TLS is refused with 538 unless the listener allows it, even on
   * listeners that offer no STARTTLS, where smtp-server would let it through.
   */
  override handler_AUTH(command: Buffer, callback: () => void): void {
    if (!this.secure && !this.settings.allowCleartextAuth) {
      this.send(538, '5.7.11 Encryption required for requested authentication mechanism');
      return callback();
    }
    super.handler_AUTH(command, callback);
  }

  /** Does not advertise AUTH where it would be refused, so clients go for STARTTLS first. */
  override handler_EHLO(command: Buffer, callback: () => void): void {
    if (this.secure || this.settings.allowCleartextAuth) return super.handler_EHLO(command, callback);
    const send = this.send;
    this.send = (code, data, context) => {
      this.send = send;
      const lines = Array.isArray(data) ? data.filter((line) => !/^AUTH[ =]/.test(line)) : data;
      send.call(this, code, lines, context);
    };
    super.handler_EHLO(command, callback);
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

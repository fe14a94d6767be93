import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import SMTPConnection, { type SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection';
import XOAuth2 from 'nodemailer/lib/xoauth2';
import type { SmtpUpstream } from '../config/schema.js';
import type { TokenRefresher } from './oauth/token-refresher.js';
import { DeliveryFailure, type Accepted, type Recipients, type Transport } from './transport.js';

type SmtpError = Error & {
  code?: string;
  command?: string;
  responseCode?: number;
  response?: string;
  rejectedErrors?: SmtpError[];
  recipient?: string;
};

/** nodemailer's codes for replies about the message itself (MAIL, RCPT, DATA). */
const MESSAGE_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

/** Socket-level failures: the provider was not reached at all. */
const UNREACHABLE = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS']);

/** What a delivery cut off by shutdown reports: the provider did not answer, the attempt counts as deferred. */
const CUT_OFF = 'delivery cut off: the bridge is shutting down';

/** A logged-in connection kept open between messages, closed when idle too long. */
interface Pooled {
  connection: SMTPConnection;
  idleTimer?: NodeJS.Timeout;
}

/**
 * A hardened provider: TLS 1.2+ (implicit or required STARTTLS, never
 * plaintext), certificate verified, AUTH forced. Credentials are only sent
 * once TLS is up and the provider has advertised AUTH. Logged-in connections
 * are reused for consecutive messages, as a provider expects of a relay.
 */
export class SmtpTransport implements Transport {
  private readonly ca?: Buffer;
  private readonly idle: Pooled[] = [];
  /** Connections with a message in flight, and how to fail that message when they are cut off. */
  private readonly busy = new Map<SMTPConnection, (err: DeliveryFailure) => void>();
  /** Logged-in connections open now, busy or idle: what the provider counts against its session limit. */
  private sessions = 0;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly upstream: SmtpUpstream,
    private readonly heloName: string,
    /** The account's tokens, for an upstream with mechanism XOAUTH2. */
    private readonly tokens?: TokenRefresher,
  ) {
    this.ca = upstream.ca_file ? readFileSync(upstream.ca_file) : undefined;
  }

  get concurrency(): number {
    return this.upstream.concurrency;
  }

  get rate(): SmtpUpstream['rate'] {
    return this.upstream.rate;
  }

  async send(envelope: Recipients, body: () => Readable): Promise<Accepted> {
    const reused = this.takeIdle();
    if (reused) {
      const stream = body();
      try {
        return await this.sendOn(reused, envelope, stream);
      } catch (err) {
        // An idle connection the provider dropped fails before a byte of the message is read:
        // that says nothing about the message, so it goes out again on a fresh connection.
        if (!(stream.readableDidRead === false && (err as SmtpError).responseCode === undefined)) throw toFailure(err as SmtpError);
        stream.destroy();
      }
    }
    if (this.closed) throw new DeliveryFailure('temporary', CUT_OFF);
    let pooled: Pooled;
    try {
      pooled = await this.open();
    } catch (err) {
      throw toFailure(err as SmtpError, this.sessions);
    }
    try {
      return await this.sendOn(pooled, envelope, body());
    } catch (err) {
      throw toFailure(err as SmtpError);
    }
  }

  /** Connects and logs in, then quits without sending: proves the credentials work (`oauth login`). */
  async verifyLogin(): Promise<void> {
    let pooled: Pooled;
    try {
      pooled = await this.open();
    } catch (err) {
      throw toFailure(err as SmtpError);
    }
    pooled.connection.quit();
  }

  /**
   * Idle connections say QUIT; busy ones are torn down at once, their
   * messages failing as deferred: a provider that stopped answering mid-DATA
   * must not keep the process alive, and nodemailer calls no callback for a
   * send it abandons on close().
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const pooled of this.idle.splice(0)) {
      clearTimeout(pooled.idleTimer);
      pooled.connection.quit();
    }
    for (const [connection, cutOff] of this.busy) {
      connection.options.socketCloseTimeout = 0;
      connection.close();
      cutOff(new DeliveryFailure('temporary', CUT_OFF));
    }
    this.busy.clear();
  }

  private async sendOn(pooled: Pooled, envelope: Recipients, body: Readable): Promise<Accepted> {
    const { connection } = pooled;
    try {
      const info = await new Promise<SMTPConnectionSendInfo>((resolve, reject) => {
        this.busy.set(connection, reject);
        connection.send({ from: envelope.sender, to: envelope.to }, body, (err, result) => (err ? reject(err) : resolve(result!)));
      }).finally(() => this.busy.delete(connection));
      this.release(pooled);
      return { response: info.response, accepted: info.accepted, refused: refusals(info.rejectedErrors) };
    } catch (err) {
      const smtpError = err as SmtpError;
      body.destroy();
      if (smtpError.code === 'EENVELOPE' && smtpError.rejectedErrors?.length) {
        // Every recipient refused: an answer about recipients, not a broken connection.
        await this.resetAndRelease(pooled);
        return { response: smtpError.response ?? smtpError.message, accepted: [], refused: refusals(smtpError.rejectedErrors) };
      }
      if (MESSAGE_ERRORS.has(smtpError.code ?? '') && smtpError.responseCode !== 421) await this.resetAndRelease(pooled);
      else connection.close();
      throw err;
    }
  }

  private takeIdle(): Pooled | undefined {
    for (let pooled = this.idle.pop(); pooled; pooled = this.idle.pop()) {
      clearTimeout(pooled.idleTimer);
      if (pooled.connection.authenticated && !(pooled.connection as unknown as { _destroyed: boolean })._destroyed) return pooled;
    }
    return undefined;
  }

  private release(pooled: Pooled): void {
    if (this.closed || this.idle.length >= this.upstream.concurrency) {
      pooled.connection.quit();
      return;
    }
    pooled.idleTimer = setTimeout(() => {
      const at = this.idle.indexOf(pooled);
      if (at !== -1) this.idle.splice(at, 1);
      pooled.connection.quit();
    }, this.upstream.idle_timeout);
    pooled.idleTimer.unref();
    this.idle.push(pooled);
  }

  private async resetAndRelease(pooled: Pooled): Promise<void> {
    await new Promise<void>((resolve) =>
      pooled.connection.reset((err) => {
        if (err) pooled.connection.close();
        else this.release(pooled);
        resolve();
      }),
    );
  }

  private async open(): Promise<Pooled> {
    const { host, port, tls: mode, min_version, connect_timeout } = this.upstream;
    const connection = new SMTPConnection({
      host,
      port: port ?? (mode === 'implicit' ? 465 : 587),
      secure: mode === 'implicit',
      requireTLS: mode === 'starttls',
      name: this.heloName,
      connectionTimeout: connect_timeout,
      greetingTimeout: connect_timeout,
      socketTimeout: 5 * 60_000,
      logger: false,
      // SNI takes names only (RFC 6066); an IP host is still verified against the certificate's IP SANs.
      tls: { minVersion: min_version, ca: this.ca, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: true },
    });
    // Errors also reach the pending callbacks; an idle connection's late error must not crash the process.
    connection.on('error', () => {});
    try {
      await this.connect(connection);
      await this.login(connection);
      this.sessions++;
      connection.once('end', () => this.sessions--);
      return { connection };
    } catch (err) {
      connection.close();
      throw err;
    }
  }

  /** nodemailer reports a failed connect only as an 'error' event, never through the callback. */
  private connect(connection: SMTPConnection): Promise<void> {
    return new Promise((resolve, reject) => {
      connection.once('error', reject);
      connection.connect((err) => {
        connection.off('error', reject);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  private login(connection: SMTPConnection): Promise<void> {
    const { auth } = this.upstream;
    if (!connection.secure) {
      return Promise.reject(new DeliveryFailure('temporary', `upstream ${this.name}: connection is not encrypted, credentials withheld`));
    }
    if (!connection.allowsAuth) {
      return Promise.reject(new DeliveryFailure('temporary', `upstream ${this.name}: provider offers no AUTH, credentials withheld`));
    }
    if (this.tokens) return this.loginWithToken(connection, this.tokens);
    return new Promise((resolve, reject) =>
      connection.login({ user: auth.user, pass: auth.password!, method: auth.mechanism }, (err) => (err ? reject(err) : resolve())),
    );
  }

  /**
   * XOAUTH2 with a token the bridge manages. A refused token gets one forced
   * refresh and one more try: nodemailer does that itself after a 334 error
   * challenge (Google), and a plain 535 (Microsoft) is retried here.
   */
  private async loginWithToken(connection: SMTPConnection, tokens: TokenRefresher): Promise<void> {
    let used: string | undefined;
    let refreshed = false;
    const oauth2 = new XOAuth2({
      user: this.upstream.auth.user,
      provisionCallback: (_user, renew, done) => {
        refreshed ||= renew;
        (renew && used ? tokens.replaceRefused(used) : tokens.accessToken()).then(
          (token) => done(null, (used = token)),
          (err: Error) => done(err),
        );
      },
    });
    const attempt = () =>
      new Promise<void>((resolve, reject) =>
        connection.login({ user: this.upstream.auth.user, method: 'XOAUTH2', oauth2 }, (err) => (err ? reject(err) : resolve())),
      );
    try {
      await attempt();
    } catch (err) {
      if (refreshed || used === undefined || (err as SmtpError).responseCode !== 535) throw err;
      refreshed = true;
      await tokens.replaceRefused(used);
      // nodemailer's XOAuth2 keeps the token it was handed; the retry must ask for the new one.
      oauth2.accessToken = false;
      await attempt();
    }
  }
}

function refusals(errors: SmtpError[] | undefined) {
  return (errors ?? []).map((err) => ({
    address: err.recipient ?? '',
    code: err.responseCode,
    response: (err.response ?? err.message).trim(),
  }));
}

/** `openSessions`: the error came while opening one more session, before any part of the message was sent, with this many others open. */
function toFailure(err: SmtpError | DeliveryFailure, openSessions?: number): DeliveryFailure {
  if (err instanceof DeliveryFailure) return err;
  const code = err.responseCode;
  // A provider's reply to STARTTLS or AUTH means little without the command it answered.
  const setup = err.response && err.command && !MESSAGE_ERRORS.has(err.code ?? '');
  const response = setup ? `${err.command}: ${err.response!.trim()}` : (err.response ?? err.message).trim();
  // Only a refusal of this message's envelope or content is permanent. A 5xx to STARTTLS or AUTH
  // is the bridge's own setup failing, never the message's fault: keep it and retry.
  if (code && code >= 500 && MESSAGE_ERRORS.has(err.code ?? '')) return new DeliveryFailure('permanent', response, code);
  // 421 to the greeting, EHLO or AUTH is how providers turn down one session too many (RFC 5321 4.3.2).
  const servedSessions = code === 421 ? openSessions : undefined;
  return new DeliveryFailure('temporary', response, code, code === undefined && UNREACHABLE.has(err.code ?? ''), servedSessions);
}

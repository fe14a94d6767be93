import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import SMTPConnection, { type SMTPConnectionSendInfo } from 'nodemailer/lib/smtp-connection';
import type { SmtpUpstream } from '../config/schema.js';
import { DeliveryFailure, type Accepted, type DeliveryEnvelope, type Transport } from './transport.js';

type SmtpError = Error & { code?: string; responseCode?: number; response?: string; rejectedErrors?: SmtpError[]; recipient?: string };

/** nodemailer's codes for replies about the message itself (MAIL, RCPT, DATA). */
const MESSAGE_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

/** Socket-level failures: the provider was not reached at all. */
const UNREACHABLE = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS']);

/**
 * A hardened provider: TLS 1.2+ (implicit or required STARTTLS, never
 * plaintext), certificate verified, AUTH forced. Credentials are only sent
 * once TLS is up and the provider has advertised AUTH.
 */
export class SmtpTransport implements Transport {
  private readonly ca?: Buffer;

  constructor(
    readonly name: string,
    private readonly upstream: SmtpUpstream,
    private readonly heloName: string,
  ) {
    this.ca = upstream.ca_file ? readFileSync(upstream.ca_file) : undefined;
  }

  async send(envelope: DeliveryEnvelope, body: Readable): Promise<Accepted> {
    const connection = this.connection();
    try {
      await this.connect(connection);
      await this.login(connection);
      const info = await new Promise<SMTPConnectionSendInfo>((resolve, reject) =>
        connection.send({ from: envelope.from, to: envelope.to }, body, (err, result) => (err ? reject(err) : resolve(result!))),
      );
      connection.quit();
      return {
        response: info.response,
        accepted: info.accepted,
        refused: (info.rejectedErrors ?? []).map((err: SmtpError) => ({ address: err.recipient ?? '', code: err.responseCode, response: err.response ?? err.message })),
      };
    } catch (err) {
      body.destroy();
      connection.close();
      throw toFailure(err as SmtpError);
    }
  }

  private connection(): SMTPConnection {
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
    connection.on('error', () => {});
    return connection;
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
    return new Promise((resolve, reject) =>
      connection.login({ user: auth.user, pass: auth.password!, method: auth.mechanism }, (err) => (err ? reject(err) : resolve())),
    );
  }
}

function toFailure(err: SmtpError | DeliveryFailure): DeliveryFailure {
  if (err instanceof DeliveryFailure) return err;
  const code = err.responseCode;
  const response = (err.response ?? err.message).trim();
  // Only a refusal of this message's envelope or content is permanent. A 5xx to STARTTLS or AUTH
  // is the bridge's own setup failing, never the message's fault: keep it and retry.
  if (code && code >= 500 && MESSAGE_ERRORS.has(err.code ?? '')) return new DeliveryFailure('permanent', response, code);
  return new DeliveryFailure('temporary', response, code, code === undefined && UNREACHABLE.has(err.code ?? ''));
}

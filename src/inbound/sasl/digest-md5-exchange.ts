import { randomBytes } from 'node:crypto';
import type { SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../observe/logger.js';
import { digestMd5Challenge, readDigestMd5Response, type DigestMd5Response } from '../../auth/digest-md5-math.js';
import { replies } from '../replies.js';
import type { Reply } from '../submission.js';
import type { BridgeAuthHandler } from './authentication.js';

/** What a SASL exchange needs from the connection it runs on. */
export interface SaslChannel {
  readonly session: SMTPServerSession;
  send(code: number, text: string): void;
  /** Routes the client's next line to `handler` instead of the command parser. */
  onNextLine(handler: (line: Buffer, done: () => void) => void): void;
  /** Marks the session authenticated, once the exchange's last step is done. */
  authenticated(user: unknown): void;
}

export interface DigestMd5Settings {
  realm: string;
  authenticate: BridgeAuthHandler;
  logger: Logger;
}

/**
 * How long an issued nonce can be answered. Devices answer within
 * milliseconds; this leaves room for a person pasting a computed response,
 * and stays under smtp-server's 60 s idle timeout so a nonce dies on its own.
 */
export const NONCE_LIFETIME_MS = 30_000;

/** Why an exchange was refused before any secret was looked at. */
type ExchangeRefusal = 'stale-nonce' | 'wrong-digest-uri' | 'authzid-not-allowed';

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/**
 * One server-side DIGEST-MD5 exchange (RFC 2831 2.1):
 *
 *   S: 334 base64(realm, nonce, qop, charset, algorithm)   C: base64(digest-response)
 *   S: 334 base64(rspauth=...)                             C: (empty line)
 *   S: 235
 *
 * The nonce is random, belongs to this exchange alone and dies once answered
 * or after NONCE_LIFETIME_MS, so a recorded response (a replay) never matches
 * a live nonce. Subsequent authentication (nc > 1 on an old nonce) is not offered.
 */
export class DigestMd5Exchange {
  private readonly nonce = randomBytes(16).toString('hex');
  private readonly issuedAt = Date.now();

  constructor(
    private readonly channel: SaslChannel,
    private readonly settings: DigestMd5Settings,
  ) {}

  /** `args` are the words after `AUTH DIGEST-MD5`; the mechanism has no initial response. */
  start(args: string[], done: () => void): void {
    if (args.length > 0) {
      this.reply(replies.digestInitialResponse);
      return done();
    }
    this.channel.send(334, base64(digestMd5Challenge(this.settings.realm, this.nonce)));
    this.channel.onNextLine((line, next) => this.onResponse(line, next));
    done();
  }

  private onResponse(line: Buffer, done: () => void): void {
    const text = line.toString('latin1').trim();
    if (text === '*') return this.abort(done);
    const reading = readDigestMd5Response(Buffer.from(text, 'base64').toString('latin1'));
    if (!reading.ok) {
      this.logFailure(undefined, 'malformed-response', reading.problem);
      this.reply(replies.digestMalformed);
      return done();
    }
    const response = reading.value;
    const refusal = this.check(response);
    if (refusal) {
      this.logFailure(response.username, refusal);
      this.reply(replies.authFailed);
      return done();
    }
    this.settings.authenticate(
      { method: 'DIGEST-MD5', username: response.username, digest: response },
      this.channel.session,
      (err, verdict) => {
        if (err || !verdict?.user || !verdict.serverProof) {
          const code = (err as { responseCode?: number } | null | undefined)?.responseCode ?? verdict?.responseCode ?? 535;
          this.channel.send(code, err?.message ?? verdict?.message ?? replies.authFailed.text);
          return done();
        }
        const user: unknown = verdict.user;
        this.channel.send(334, base64(`rspauth=${verdict.serverProof}`));
        this.channel.onNextLine((final, next) => this.onFinal(final, user, next));
        done();
      },
    );
  }

  /** The client has checked rspauth; RFC 2831 has it answer with an empty line. */
  private onFinal(line: Buffer, user: unknown, done: () => void): void {
    const text = line.toString('latin1').trim();
    if (text === '*') return this.abort(done);
    if (text !== '') {
      this.settings.logger.debug(
        { client_ip: this.channel.session.remoteAddress, sasl_method: 'DIGEST-MD5', sloppy: 'non-empty line after rspauth' },
        'accepted sloppy input',
      );
    }
    this.channel.authenticated(user);
    this.reply(replies.authSucceeded);
    done();
  }

  private check(response: DigestMd5Response): ExchangeRefusal | undefined {
    // nc counts uses of one nonce: anything but the first is a reuse.
    const live = response.nonce === this.nonce && Date.now() - this.issuedAt <= NONCE_LIFETIME_MS && parseInt(response.nc, 16) === 1;
    if (!live) return 'stale-nonce';
    if (!/^smtp\//i.test(response.digestUri)) return 'wrong-digest-uri';
    if (response.authzid !== undefined && response.authzid !== response.username) return 'authzid-not-allowed';
    return undefined;
  }

  private reply({ code, text }: Reply): void {
    this.channel.send(code, text);
  }

  private abort(done: () => void): void {
    this.reply(replies.authAborted);
    done();
  }

  private logFailure(username: string | undefined, reason: ExchangeRefusal | 'malformed-response', problem?: string): void {
    const fields = { client_ip: this.channel.session.remoteAddress, sasl_method: 'DIGEST-MD5', sasl_username: username, reason, problem };
    this.settings.logger.warn(fields, 'authentication failed');
  }
}

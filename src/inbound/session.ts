import type tls from 'node:tls';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerSession,
} from 'smtp-server';
import type { Logger } from '../observe/logger.js';
import type { AuthAttempt, DeviceDirectory, DevicePolicy } from '../policy/devices.js';
import { SizeLimit } from './size-limit.js';
import { ReplyError, type Intake } from './submission.js';

/** What one connection has established so far, kept beside smtp-server's session. */
interface SessionFacts {
  device?: DevicePolicy;
  tls?: string;
  cipher?: string;
  saslMethod?: string;
  saslUsername?: string;
}

const AUTH_FAILED = '5.7.8 Authentication credentials invalid';

export interface SessionDeps {
  devices: DeviceDirectory;
  intake: Intake;
  logger: Logger;
  maxMessageSize: number;
}

type Callback = (err?: Error | null) => void;

/** smtp-server's hooks for one listener: who the device is, what it may send, and where DATA goes. */
export function createSessionHandlers({ devices, intake, logger, maxMessageSize }: SessionDeps) {
  const facts = new WeakMap<SMTPServerSession, SessionFacts>();
  const factsOf = (session: SMTPServerSession): SessionFacts => {
    let known = facts.get(session);
    if (!known) facts.set(session, (known = {}));
    return known;
  };

  /** The device behind a session: the one that authenticated, or one that needs no AUTH from this address. */
  const deviceOf = (session: SMTPServerSession): DevicePolicy | undefined => {
    const known = factsOf(session);
    if (session.user) return known.device;
    return devices.identifyByAddress(session.remoteAddress);
  };

  const checkAddress = (rule: 'senders' | 'recipients', address: string, session: SMTPServerSession, callback: Callback) => {
    const device = deviceOf(session);
    if (!device) return callback(new ReplyError(530, '5.7.0 Authentication required'));
    if (device[rule].allows(address)) return callback();
    const [field, role] = rule === 'senders' ? ['from', 'Sender'] : ['to', 'Recipient'];
    logger.warn({ device: device.name, client_ip: session.remoteAddress, [field]: address, rule }, `${role.toLowerCase()} refused`);
    callback(new ReplyError(550, `5.7.1 ${role} <${address}> not allowed for this device`));
  };

  return {
    onSecure(socket: tls.TLSSocket, session: SMTPServerSession, callback: Callback) {
      const known = factsOf(session);
      known.tls = socket.getProtocol() ?? undefined;
      known.cipher = socket.getCipher()?.name;
      // STARTTLS discards any earlier identity (RFC 3207), so must we.
      delete known.device;
      callback();
    },

    onAuth(
      auth: SMTPServerAuthentication,
      session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
    ) {
      const attempt = toAttempt(auth);
      if (!attempt) return callback(null, { message: AUTH_FAILED, responseCode: 535 });
      const verdict = devices.authenticate(attempt, session.remoteAddress);
      const context = { client_ip: session.remoteAddress, sasl_method: attempt.mechanism, sasl_username: attempt.username };
      if (!verdict.ok) {
        logger.warn({ ...context, device: verdict.device?.name, reason: verdict.reason }, 'authentication failed');
        return callback(null, { message: AUTH_FAILED, responseCode: 535 });
      }
      Object.assign(factsOf(session), { device: verdict.device, saslMethod: attempt.mechanism, saslUsername: attempt.username });
      logger.info({ ...context, device: verdict.device.name, tls: factsOf(session).tls ?? 'none' }, 'authenticated');
      callback(null, { user: verdict.device.name });
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      checkAddress('senders', address.address, session, callback);
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      checkAddress('recipients', address.address, session, callback);
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
      const device = deviceOf(session);
      const known = factsOf(session);
      if (!device) {
        stream.resume();
        return callback(new ReplyError(530, '5.7.0 Authentication required'));
      }
      const limited = new SizeLimit(maxMessageSize);
      stream.pipe(limited);
      // A device that drops mid-DATA destroys smtp-server's stream; pipe() would leave ours open forever.
      stream.once('close', () => {
        if (!stream.readableEnded) limited.destroy(new Error('connection closed during DATA'));
      });
      const mailFrom = session.envelope.mailFrom;
      const submission = {
        device: device.name,
        upstream: device.upstream,
        clientIp: session.remoteAddress,
        tls: known.tls,
        cipher: known.cipher,
        saslMethod: session.user ? known.saslMethod : undefined,
        saslUsername: session.user ? known.saslUsername : undefined,
        from: mailFrom ? mailFrom.address : '',
        to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
        receivedAt: new Date(),
      };
      intake
        .spool(submission, limited)
        .then(async (spooled) => {
          if (limited.exceeded) {
            await spooled.discard();
            logger.warn({ queue_id: spooled.queueId, device: device.name, client_ip: session.remoteAddress, limit: maxMessageSize }, 'message over size limit');
            return callback(new ReplyError(552, `5.3.4 Message exceeds fixed maximum message size ${maxMessageSize}`));
          }
          const reply = await spooled.release();
          if (reply.code >= 400) return callback(new ReplyError(reply.code, reply.text));
          callback(null, reply.text);
        })
        .catch((err: unknown) => {
          // The device is still sending; it can only hear a reply once DATA ends.
          stream.unpipe(limited);
          stream.resume();
          callback(err instanceof ReplyError ? err : new ReplyError(451, '4.3.0 Local error in processing'));
          if (!(err instanceof ReplyError)) logger.error({ err, device: device.name, client_ip: session.remoteAddress }, 'message not accepted');
        });
    },
  };
}

function toAttempt(auth: SMTPServerAuthentication): AuthAttempt | undefined {
  const username = auth.username ?? '';
  switch (auth.method) {
    case 'PLAIN':
    case 'LOGIN':
      return { mechanism: auth.method, username, password: auth.password ?? '' };
    case 'CRAM-MD5':
      return { mechanism: 'CRAM-MD5', username, challenge: auth.challenge ?? '', response: auth.challengeResponse ?? '' };
    default:
      return undefined;
  }
}

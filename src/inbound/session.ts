import type tls from 'node:tls';
import type { SMTPServerAddress, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { formatRate } from '../config/schema.js';
import type { EventSink } from '../events.js';
import type { Arrival, ConnState } from '../message.js';
import type { Logger } from '../observe/logger.js';
import type { AuthRefusal } from '../policy/authenticator.js';
import type { Admission } from '../policy/budgets.js';
import type { AuthAttempt, DevicePolicy } from '../policy/devices.js';
import type { PolicyStage } from '../policy/stage.js';
import type { BridgeAuthentication, BridgeAuthResponse } from './sasl/authentication.js';
import { SizeLimit } from './size-limit.js';
import { authResponse, refuse, replies } from './replies.js';
import { ReplyError, type Intake } from './submission.js';

/** What one connection has established so far, kept beside smtp-server's session: its part of ConnState, and the device. */
interface SessionFacts extends Partial<Pick<ConnState, 'tls' | 'cipher' | 'saslMethod' | 'saslUsername'>> {
  device?: DevicePolicy;
}

/** What a refused AUTH hears: one 535 for everything about the credentials, so the reply never tells an attacker which part was right. */
function authRefusalReply(reason: AuthRefusal): SMTPServerAuthenticationResponse {
  if (reason === 'locked-out') return authResponse(replies.authLockedOut);
  if (reason === 'cleartext-not-allowed') return authResponse(replies.encryptionRequired);
  return authResponse(replies.authFailed);
}

export interface SessionDeps {
  policy: PolicyStage;
  intake: Intake;
  logger: Logger;
  maxMessageSize: number;
  events: EventSink;
}

type Callback = (err?: Error | null) => void;

/**
 * smtp-server's hooks for one listener: who the device is, what it may send,
 * and where DATA goes; beside them, the device behind a session, for the
 * connection's own per-device behaviour.
 */
export function createSessionHandlers({ policy, intake, logger, maxMessageSize, events }: SessionDeps) {
  // The policy's parts are looked up at each call, not kept: a reload replaces them for the sessions that follow.
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
    return policy.devices.identifyByAddress(session.remoteAddress);
  };

  /** Refuses an envelope address with the reply for the rule it broke, logging the device and the rule. */
  const refuseAddress = (
    role: 'sender' | 'recipient',
    address: string,
    session: SMTPServerSession,
    device: DevicePolicy,
    rule: string,
    reply: ReplyError,
  ) => {
    logger.warn(
      { device: device.name, client_ip: session.remoteAddress, [role === 'sender' ? 'from' : 'to']: address, rule },
      `${role} refused`,
    );
    events({ type: 'refused', device: device.name, rule });
    return reply;
  };

  /** The reply for a budget or freeze refusal; undefined when the device may go on. */
  const refusalFor = (admission: Admission, device: DevicePolicy, session: SMTPServerSession): ReplyError | undefined => {
    if (admission.ok) return undefined;
    const context = { device: device.name, client_ip: session.remoteAddress };
    events({ type: 'refused', device: device.name, rule: admission.refusal === 'frozen' ? 'frozen' : `limits.${admission.rule}` });
    if (admission.refusal === 'frozen') {
      logger.warn(context, 'refused: device frozen');
      return refuse(replies.deviceFrozen);
    }
    const limit = formatRate(admission.limit);
    logger.warn({ ...context, rule: admission.rule, limit }, 'over budget');
    return refuse(replies.budgetExceeded(`${admission.rule} ${limit}`));
  };

  const hooks = {
    onSecure(socket: tls.TLSSocket, session: SMTPServerSession, callback: Callback) {
      const known = factsOf(session);
      known.tls = socket.getProtocol() ?? undefined;
      known.cipher = socket.getCipher()?.name;
      if (known.tls) events({ type: 'tls-session', version: known.tls });
      // STARTTLS discards any earlier identity (RFC 3207), so must we.
      delete known.device;
      callback();
    },

    onAuth(
      auth: BridgeAuthentication,
      session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: BridgeAuthResponse) => void,
    ) {
      const attempt = toAttempt(auth);
      if (!attempt) {
        events({ type: 'auth-failed', reason: 'unknown-mechanism' });
        return callback(null, authResponse(replies.authFailed));
      }
      const known = factsOf(session);
      const context = { client_ip: session.remoteAddress, sasl_method: attempt.mechanism, sasl_username: attempt.username };
      policy.authenticator.authenticate(attempt, { clientIp: session.remoteAddress, secure: session.secure, tls: known.tls }).then(
        (verdict) => {
          if (!verdict.ok) {
            const until = verdict.lock && new Date(verdict.lock.until).toISOString();
            logger.warn(
              { ...context, device: verdict.device?.name, reason: verdict.reason, until, outside_networks: verdict.outsideNetworks },
              'authentication failed',
            );
            events({ type: 'auth-failed', device: verdict.device?.name, reason: verdict.reason });
            return callback(null, authRefusalReply(verdict.reason));
          }
          Object.assign(known, { device: verdict.device, saslMethod: attempt.mechanism, saslUsername: attempt.username });
          logger.info({ ...context, device: verdict.device.name, tls: known.tls ?? 'none' }, 'authenticated');
          events({
            type: 'authenticated',
            device: verdict.device.name,
            clientIp: session.remoteAddress,
            tls: known.tls,
            mechanism: attempt.mechanism,
          });
          callback(null, { user: verdict.device.name, serverProof: verdict.device.serverProof(attempt) });
        },
        (err: Error) => {
          logger.error({ ...context, err: err.message }, 'authentication error');
          callback(null, authResponse(replies.authUnavailable));
        },
      );
    },

    onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      const device = deviceOf(session);
      if (!device) return callback(refuse(replies.authRequired));
      const from = address.address;
      const known = factsOf(session);
      // Devices that AUTH met min_tls then; one known by its address alone meets it here.
      if (!session.user && !device.acceptsTls(known.tls)) {
        return callback(refuseAddress('sender', from, session, device, 'min_tls', refuse(replies.tlsTooOld(device.minTls!))));
      }
      if (!device.senders.allows(from)) {
        return callback(refuseAddress('sender', from, session, device, 'senders', refuse(replies.senderRefused(from))));
      }
      const declared = Number(address.args ? address.args.SIZE : undefined);
      if (device.maxSize !== undefined && declared > device.maxSize) {
        return callback(refuseAddress('sender', from, session, device, 'max_size', refuse(replies.declaredSizeTooBig(device.maxSize))));
      }
      callback(
        refusalFor(
          policy.budgets.admitMessage(device, { clientIp: session.remoteAddress, saslUsername: known.saslUsername }),
          device,
          session,
        ),
      );
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: Callback) {
      const device = deviceOf(session);
      if (!device) return callback(refuse(replies.authRequired));
      const to = address.address;
      if (!device.recipients.allows(to)) {
        return callback(refuseAddress('recipient', to, session, device, 'recipients', refuse(replies.recipientRefused(to))));
      }
      if (device.maxRecipients !== undefined && session.envelope.rcptTo.length >= device.maxRecipients) {
        return callback(
          refuseAddress('recipient', to, session, device, 'max_recipients', refuse(replies.tooManyRecipients(device.maxRecipients))),
        );
      }
      callback(refusalFor(policy.budgets.admitRecipient(device), device, session));
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) {
      const device = deviceOf(session);
      const known = factsOf(session);
      if (!device) {
        stream.resume();
        return callback(refuse(replies.authRequired));
      }
      const sizeLimit = device.maxSize ?? maxMessageSize;
      const limited = new SizeLimit(sizeLimit);
      stream.pipe(limited);
      // A device that drops mid-DATA destroys smtp-server's stream; pipe() would leave ours open forever.
      let dropped = false;
      stream.once('close', () => {
        if (stream.readableEnded) return;
        dropped = true;
        limited.destroy(new Error('connection closed during DATA'));
      });
      const mailFrom = session.envelope.mailFrom;
      const arrival: Arrival = {
        conn: {
          device: device.name,
          clientIp: session.remoteAddress,
          helo: session.hostNameAppearsAs || undefined,
          esmtp: session.openingCommand !== 'HELO',
          tls: known.tls,
          cipher: known.cipher,
          saslMethod: session.user ? known.saslMethod : undefined,
          saslUsername: session.user ? known.saslUsername : undefined,
        },
        envelope: {
          originalFrom: mailFrom ? mailFrom.address : '',
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          upstream: device.upstream,
          receivedAt: new Date().toISOString(),
        },
      };
      intake
        .spool(arrival, limited)
        .then(async (spooled) => {
          if (limited.exceeded) {
            await spooled.discard();
            const rule = sizeLimit < maxMessageSize ? 'max_size' : 'max_message_size';
            logger.warn(
              { queue_id: spooled.queueId, device: device.name, client_ip: session.remoteAddress, rule, limit: sizeLimit },
              'message over size limit',
            );
            events({ type: 'refused', device: device.name, rule });
            return callback(refuse(replies.messageTooBig(sizeLimit)));
          }
          const reply = await spooled.release();
          if (reply.code >= 400) return callback(new ReplyError(reply.code, reply.text));
          callback(null, reply.text);
        })
        .catch((err: unknown) => {
          // The device is still sending; it can only hear a reply once DATA ends.
          stream.unpipe(limited);
          stream.resume();
          callback(err instanceof ReplyError ? err : refuse(replies.localError));
          if (err instanceof ReplyError) return;
          const context = { device: device.name, client_ip: session.remoteAddress };
          // The device went away: nothing is wrong with the bridge, and nothing was accepted.
          if (dropped) return logger.warn(context, 'client disconnected during DATA');
          const { message, code } = err instanceof Error ? (err as NodeJS.ErrnoException) : { message: String(err), code: undefined };
          logger.error({ ...context, err: message, code }, 'message not accepted');
        });
    },
  };
  return { hooks, deviceOf };
}

function toAttempt(auth: BridgeAuthentication): AuthAttempt | undefined {
  const username = auth.username ?? '';
  switch (auth.method) {
    case 'PLAIN':
    case 'LOGIN':
      return { mechanism: auth.method, username, password: auth.password ?? '' };
    case 'CRAM-MD5':
      return { mechanism: 'CRAM-MD5', username, challenge: auth.challenge ?? '', response: auth.challengeResponse ?? '' };
    case 'DIGEST-MD5':
      return { mechanism: 'DIGEST-MD5', username: auth.username, digest: auth.digest };
    default:
      return undefined;
  }
}

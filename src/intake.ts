import type { Readable } from 'node:stream';
import type { DeliveryOutcome, Dispatcher } from './delivery/dispatcher.js';
import { ReplyError, type Intake, type Reply, type Submission } from './inbound/submission.js';
import type { Logger } from './observe/logger.js';
import type { SpoolStore } from './spool/store.js';

/** Disk-full and permission errors: the spool cannot take the message, the device should try later. */
const STORAGE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS']);

/**
 * Connects the inbound stage to the spool and delivery: the message is made
 * durable first, then delivered while the device waits, and the device hears
 * the provider's verdict.
 */
export function createIntake(spool: SpoolStore, dispatcher: Dispatcher, logger: Logger): Intake {
  return {
    async spool(submission: Submission, body: Readable) {
      const envelope = { ...submission, receivedAt: submission.receivedAt.toISOString() };
      const message = await spool.write(envelope, body).catch((err: NodeJS.ErrnoException) => {
        if (!STORAGE_ERRORS.has(err.code ?? '')) throw err;
        logger.error({ device: submission.device, client_ip: submission.clientIp, err: err.message }, 'spool not writable');
        throw new ReplyError(452, '4.3.1 Insufficient system storage');
      });
      return {
        queueId: message.id,
        discard: () => spool.remove(message.id),
        release: async () => {
          logger.info(
            {
              queue_id: message.id,
              device: submission.device,
              client_ip: submission.clientIp,
              tls: submission.tls ?? 'none',
              cipher: submission.cipher,
              sasl_method: submission.saslMethod,
              sasl_username: submission.saslUsername,
              from: submission.from,
              to: submission.to,
              size: message.size,
              message_id: message.messageId,
            },
            'accepted',
          );
          return replyFor(await dispatcher.deliver(message));
        },
      };
    },
  };
}

/** What the device hears: the provider's acceptance, its permanent refusal, or "try again". */
function replyFor(outcome: DeliveryOutcome): Reply {
  if (outcome.status === 'delivered') return { code: 250, text: `2.0.0 Relayed: ${outcome.result.response}` };
  const { failure } = outcome;
  if (failure.kind === 'permanent') {
    const enhanced = /\b(5\.\d{1,3}\.\d{1,3})\b/.exec(failure.message)?.[1] ?? '5.0.0';
    return { code: 554, text: `${enhanced} Upstream refused the message: ${failure.message}` };
  }
  const enhanced = failure.unreachable ? '4.4.1' : '4.4.0';
  return { code: 451, text: `${enhanced} Upstream unavailable, try again later: ${failure.message}` };
}

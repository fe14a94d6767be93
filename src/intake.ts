import type { Readable } from 'node:stream';
import type { Cleanup } from './cleanup/cleanup.js';
import type { Scheduler, Verdict } from './delivery/scheduler.js';
import { ReplyError, type Intake, type Reply, type Submission } from './inbound/submission.js';
import type { Logger } from './observe/logger.js';
import { newQueueId, type SpoolStore } from './spool/store.js';

/** Disk-full and permission errors: the spool cannot take the message, the device should try later. */
const STORAGE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS']);

/**
 * Connects the inbound stage to cleanup, the spool and the scheduler: the
 * message is cleaned up on its way to disk, made durable, then handed to
 * delivery, and the device hears the provider's verdict when it comes
 * quickly, "queued" otherwise.
 */
export function createIntake(spool: SpoolStore, cleanup: Cleanup, scheduler: Scheduler, logger: Logger): Intake {
  const storage = new StorageCondition(logger);
  return {
    async spool(submission: Submission, body: Readable) {
      const { helo: _helo, esmtp: _esmtp, ...facts } = submission;
      const envelope = { ...facts, from: cleanup.sender(submission), receivedAt: submission.receivedAt.toISOString() };
      const id = newQueueId();
      const { filters, messageId } = cleanup.filters(submission, id, submission.receivedAt);
      const message = await spool.write(envelope, body, { id, filters, messageId }).then(
        (written) => {
          storage.ok();
          return written;
        },
        (err: NodeJS.ErrnoException) => {
          if (!STORAGE_ERRORS.has(err.code ?? '')) throw err;
          storage.failed(err, submission);
          throw new ReplyError(452, '4.3.1 Insufficient system storage');
        },
      );
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
          return replyFor(await scheduler.submit(message));
        },
      };
    },
  };
}

/** What the device hears: the provider's acceptance, its permanent refusal, or that the bridge has it. */
function replyFor(verdict: Verdict): Reply {
  switch (verdict.status) {
    case 'delivered':
      return { code: 250, text: `2.0.0 Relayed: ${verdict.response}` };
    case 'refused': {
      const enhanced = /\b(5\.\d{1,3}\.\d{1,3})\b/.exec(verdict.response)?.[1] ?? '5.0.0';
      return { code: 554, text: `${enhanced} Upstream refused the message: ${verdict.response}` };
    }
    case 'queued':
      return { code: 250, text: `2.0.0 Queued as ${verdict.id}` };
  }
}

/** Logs a broken spool once per condition (not once per message), and once more when it recovers. */
class StorageCondition {
  private current?: string;

  constructor(private readonly logger: Logger) {}

  failed(err: NodeJS.ErrnoException, submission: Submission): void {
    if (this.current === err.code) return;
    this.current = err.code;
    this.logger.error(
      { device: submission.device, client_ip: submission.clientIp, code: err.code, err: err.message },
      'spool not writable',
    );
  }

  ok(): void {
    if (this.current === undefined) return;
    this.logger.info({ code: this.current }, 'spool writable again');
    this.current = undefined;
  }
}

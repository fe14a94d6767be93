import type { Readable } from 'node:stream';
import type { Cleanup } from './cleanup/cleanup.js';
import type { Scheduler, Verdict } from './delivery/scheduler.js';
import { refuse, replies } from './inbound/replies.js';
import type { Intake, Reply } from './inbound/submission.js';
import type { EventSink } from './events.js';
import type { Arrival, ConnState } from './message.js';
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
export function createIntake(
  spool: SpoolStore,
  /** Asked for each message: a reload may have replaced the device rules it applies. */
  cleanup: () => Cleanup,
  scheduler: Scheduler,
  logger: Logger,
  events: EventSink,
): Intake {
  const storage = new StorageCondition(logger);
  return {
    async spool(arrival: Arrival, body: Readable) {
      const { conn, envelope } = arrival;
      const message = await cleanup()
        .enqueue(newQueueId(), arrival, body, spool)
        .then(
          (written) => {
            storage.ok();
            return written;
          },
          (err: NodeJS.ErrnoException) => {
            if (!STORAGE_ERRORS.has(err.code ?? '')) throw err;
            storage.failed(err, conn);
            throw refuse(replies.storageFull);
          },
        );
      return {
        queueId: message.id,
        discard: () => spool.remove(message.id),
        release: async () => {
          logger.info(
            {
              queue_id: message.id,
              device: conn.device,
              client_ip: conn.clientIp,
              tls: conn.tls ?? 'none',
              cipher: conn.cipher,
              sasl_method: conn.saslMethod,
              sasl_username: conn.saslUsername,
              from: envelope.originalFrom,
              to: envelope.to,
              size: message.size,
              message_id: message.messageId,
            },
            'accepted',
          );
          const { device, clientIp, tls, saslMethod: mechanism } = conn;
          events({ type: 'accepted', device, upstream: envelope.upstream, clientIp, tls, mechanism });
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
      return replies.relayed(verdict.response);
    case 'refused':
      return replies.upstreamRefused(verdict.response);
    case 'queued':
      return replies.queued(verdict.id);
  }
}

/** Logs a broken spool once per condition (not once per message), and once more when it recovers. */
class StorageCondition {
  private current?: string;

  constructor(private readonly logger: Logger) {}

  failed(err: NodeJS.ErrnoException, conn: ConnState): void {
    if (this.current === err.code) return;
    this.current = err.code;
    this.logger.error({ device: conn.device, client_ip: conn.clientIp, code: err.code, err: err.message }, 'spool not writable');
  }

  ok(): void {
    if (this.current === undefined) return;
    this.logger.info({ code: this.current }, 'spool writable again');
    this.current = undefined;
  }
}
